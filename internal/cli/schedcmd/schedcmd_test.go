package schedcmd

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
)

func TestParseRunTime(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 30, 45, 500, time.UTC)
	want := time.Date(2024, 5, 1, 1, 0, 0, 0, time.UTC)
	for _, in := range []string{"2024-05-01T01:00:00Z", "2024-05-01T10:00:00+09:00", "2024-05-01 01:00:00 UTC", "2024-05-01 01:00:00", "1714525200"} {
		got, err := ParseRunTime(in, now)
		require.NoError(t, err, in)
		assert.True(t, got.Equal(want), "%s: %s", in, got)
	}
	got, err := ParseRunTime("2024-05-01", now)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), got)
	got, err = ParseRunTime("now", now)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2024, 5, 1, 12, 30, 45, 0, time.UTC), got)
	for _, bad := range []string{"", "yesterday", "2024-13-01", "-5"} {
		_, err := ParseRunTime(bad, now)
		assert.Error(t, err, bad)
	}
}

func TestCreateFlags(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var got *EditOptions
	cmd := NewCmdCreate(factory.New(ios), func(o *EditOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"daily", "0 1 * * *", "SELECT 1", "-d", "db", "-t", "Asia/Tokyo", "-D", "60", "-P", "VERY_LOW", "-R", "2", "-T", "Hive"})
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	_, err := cmd.ExecuteC()
	require.NoError(t, err)
	s := got.Settings
	assert.Equal(t, "daily", got.Name)
	assert.Equal(t, "0 1 * * *", s.Cron)
	assert.Equal(t, "SELECT 1", s.Query)
	assert.Equal(t, "db", s.Database)
	assert.Equal(t, "Asia/Tokyo", s.Timezone)
	assert.Equal(t, "hive", s.Type)
	require.NotNil(t, s.Delay)
	require.NotNil(t, s.Priority)
	require.NotNil(t, s.RetryLimit)
	assert.Equal(t, 60, *s.Delay)
	assert.Equal(t, -2, *s.Priority)
	assert.Equal(t, 2, *s.RetryLimit)
}
