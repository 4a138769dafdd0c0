package workflow

import "testing"

func TestClosestKey(t *testing.T) {
	known := []string{"database", "engine", "priority", "image", "memory", "run_as_user"}
	for _, c := range []struct{ in, want string }{
		{"databse", "database"},
		{"Memroy", "memory"},
		{"run_as_usr", "run_as_user"},
		{"imag", "image"},
		{"docker", ""},
		{"x", ""},
	} {
		if got := ClosestKey(c.in, known); got != c.want {
			t.Errorf("ClosestKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
