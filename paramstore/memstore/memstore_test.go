package memstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tdctl/tdctl/paramstore"
	"github.com/tdctl/tdctl/paramstore/memstore"
	"github.com/tdctl/tdctl/paramstore/paramstoretest"
)

func TestConformance(t *testing.T) {
	paramstoretest.Run(t, func(t *testing.T) *paramstore.Store {
		s, err := paramstore.Open(t.Context(), "mem://")
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSweepWithClock(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	d := memstore.New(memstore.WithClock(func() time.Time { return now }))
	s, err := paramstore.New(d, paramstore.WithSweepInterval(0))
	require.NoError(t, err)
	h := s.Site(0)
	require.NoError(t, h.WithTTL(time.Hour).Set(t.Context(), "a", paramstore.Int(1)))
	require.NoError(t, h.Set(t.Context(), "b", paramstore.Int(2)))
	now = now.Add(time.Hour)
	n, err := s.Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = h.Get(t.Context(), "b")
	require.NoError(t, err)
}
