package app_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tdctl/tdctl/internal/cli/app"
	"github.com/tdctl/tdctl/internal/cli/cmdutil"
	"github.com/tdctl/tdctl/internal/cli/factory"
	"github.com/tdctl/tdctl/internal/cli/iostreams"
	"github.com/tdctl/tdctl/internal/cli/root"
	"github.com/tdctl/tdctl/td"
)

type coded struct{ code int }

func (e coded) Error() string { return fmt.Sprintf("coded %d", e.code) }
func (e coded) ExitCode() int { return e.code }

// TestExitCode is the one rule: an error's own ExitCode() (the outermost
// in the chain) first, then the td table, else 1.
func TestExitCode(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	live := context.Background()
	apiErr := &td.APIError{StatusCode: 404, Method: "GET", Path: "/v3/job/show/1"}
	netErr := &td.NetError{Method: "GET", Path: "/v3/job/list", Err: context.DeadlineExceeded}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"nil", live, nil, 0},
		{"closed stdout", live, fmt.Errorf("writing: %w", syscall.EPIPE), 0},
		{"an error's own code", live, fmt.Errorf("x: %w", coded{7}), 7},
		{"the outermost code wins", live, fmt.Errorf("x: %w", cmdutil.NewFlagError(&cmdutil.StoreError{Err: errors.New("s")})), 1},
		{"store failure", live, &cmdutil.StoreError{Err: errors.New("down")}, 2},
		{"store connect timeout is no --timeout", live, &cmdutil.StoreError{Err: fmt.Errorf("connect: %w", context.DeadlineExceeded)}, 2},
		{"store error on interrupt", done, &cmdutil.StoreError{Err: context.Canceled}, 130},
		{"cancelled context, not interrupted", live, context.Canceled, 1},
		{"interrupted", done, fmt.Errorf("waiting: %w", context.Canceled), 130},
		{"ErrCancel", live, fmt.Errorf("%w: job 1 keeps running", cmdutil.ErrCancel), 130},
		{"ErrCancel before the kill's API error", live, fmt.Errorf("%w: %w", cmdutil.ErrCancel, errors.Join(apiErr)), 130},
		{"not finished", live, &cmdutil.NotFinishedError{JobID: "1", Status: "running"}, 5},
		{"config", live, cmdutil.NewConfigError(errors.New("bad td.conf")), 1},
		{"script code", live, &cmdutil.ScriptExitError{Code: 9, Err: errors.New("exit 9")}, 9},
		{"td API error", live, fmt.Errorf("export: %w", apiErr), 2},
		{"td API error in a join", live, errors.Join(errors.New("a"), apiErr), 2},
		{"td not found", live, fmt.Errorf("x: %w", td.ErrNotFound), 2},
		{"td network error (its own timeout)", live, netErr, 2},
		{"td truncated", live, fmt.Errorf("x: %w", td.ErrTruncated), 2},
		{"td unusable answer", live, fmt.Errorf("x: %w", &td.ProtocolError{Msg: "bad gzip answer"}), 2},
		{"td refused an argument", live, fmt.Errorf("x: %w", td.ErrInvalidArgument), 1},
		{"td job failed", live, &td.JobFailedError{JobID: "1", Status: "error"}, 3},
		{"td wait timeout", live, fmt.Errorf("td: job 1 still running: %w", td.ErrWaitTimeout), 4},
		{"the user's --timeout", live, fmt.Errorf("pod: %w", context.DeadlineExceeded), 4},
		{"untyped", live, errors.New("td: GET /x: something"), 1},
	} {
		assert.Equal(t, tc.want, app.ExitCode(tc.ctx, tc.err), tc.name)
	}
}

// TestUnknownCommandIsUsage: cobra's own "unknown command" is typed where
// cobra returns it, so it gets exit 1 and the pointer to the help.
func TestUnknownCommandIsUsage(t *testing.T) {
	for _, args := range [][]string{{"nope"}, {"version", "extra"}, {"--nope"}} {
		ios, _, _, errOut := iostreams.Test()
		f := factory.New(ios)
		f.Getenv = func(string) string { return "" }
		code := app.Run(context.Background(), f, root.NewCmdCore, args)
		assert.Equal(t, 1, code, "%v", args)
		assert.Regexp(t, `^(unknown command "(nope|extra)" for "tdctl( version)?"|unknown flag: --nope) \(see 'tdctl( version)? --help'\)\n$`, errOut.String(), "%v", args)
	}
}
