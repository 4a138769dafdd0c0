package td

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTimeZones(t *testing.T) {
	want := time.Date(2016, 7, 26, 8, 14, 46, 0, time.UTC)
	for _, s := range []string{"2016-07-26 08:14:46 UTC", "2016-07-26T08:14:46Z", "2016-07-26 08:14:46 +0000", "2016-07-26 17:14:46 JST", "2016-07-26 17:14:46 +0900"} {
		got, err := ParseTime(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	_, err := ParseTime("2016-07-26 17:14:46 XYZ")
	require.ErrorContains(t, err, "unknown zone XYZ")
}
