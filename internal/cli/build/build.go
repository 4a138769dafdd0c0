// Package build holds the version information stamped into tdctl at link
// time:
//
//	go build -ldflags "-s -w \
//	  -X github.com/tdctl/tdctl/internal/cli/build.Version=v1.2.3 \
//	  -X github.com/tdctl/tdctl/internal/cli/build.Commit=abc1234 \
//	  -X github.com/tdctl/tdctl/internal/cli/build.Date=2025-01-02T03:04:05Z" ./cmd/tdctl
//
// It imports nothing so that `tdctl version` stays cheap.
package build

// Version is the release version ("dev" in a plain go build).
var Version = "dev"

// Commit is the git commit the binary was built from ("" when unknown).
var Commit = ""

// Date is the build date in RFC 3339 ("" when unknown).
var Date = ""
