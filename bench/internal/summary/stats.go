package summary

import "slices"

// Median is the middle of v (the upper one of two); v is left as it is.
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// Ratios returns a[i]/b[i]: with a and b measured in alternating rounds,
// each round's ratio pairs runs made seconds apart, so their median holds
// better than the ratio of the medians when the machine's load drifts.
func Ratios(a, b []float64) []float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	return r
}
