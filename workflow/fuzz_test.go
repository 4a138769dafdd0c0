package workflow

import (
	"testing"
)

// FuzzParse: any input parses or fails with an error, never a panic; a
// parsed workflow can be checked.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"+a:\n  echo>: hi\n",
		"_export:\n  td:\n    database: x\n+q:\n  td>: q.sql\n",
		"+l:\n  for_each>:\n    v: [1,2]\n  _parallel: true\n  _do:\n    echo>: ${v}\n",
		"+a:\n  _error:\n    +b:\n      echo>: ${error.message}\n  fail>:\n",
		"- not a map",
		"+a: [1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		wf, err := Parse("fuzz.dig", []byte(src))
		if err != nil {
			return
		}
		r := &Runner{Operators: map[string]Operator{"echo": OperatorFunc(nil)}}
		_ = r.Check(wf)
	})
}
