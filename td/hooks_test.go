package td

// SetTestChunkSize makes parallel downloads use ranges of n bytes until
// the returned function is called (tests: many ranges from a small result).
func SetTestChunkSize(n int64) (restore func()) {
	old := testChunkSize
	testChunkSize = n
	return func() { testChunkSize = old }
}
