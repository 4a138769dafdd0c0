package workflow

import (
	"testing"
)

// FuzzParse: any input parses or fails with an error, never a panic; a
// parsed workflow can be checked (and aliases, recursive or multiplying,
// never hang or crash either).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"+a:\n  echo>: hi\n",
		"_export:\n  td:\n    database: x\n+q:\n  td>: q.sql\n",
		"+l:\n  for_each>:\n    v: [1,2]\n  _parallel: true\n  _do:\n    echo>: ${v}\n",
		"+a:\n  _error:\n    +b:\n      echo>: ${error.message}\n  fail>:\n",
		"- not a map",
		"+a: [1",
		"_export: &x {y: *x}\n+a:\n  echo>: ${y}\n",
		"+a: &t\n  echo>: hi\n  +b: *t\n",
		"_export:\n  v: &v [1, 2]\n+l:\n  for_each>:\n    x: *v\n  _do:\n    echo>: ${x}\n",
		aliasBomb(9),
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
