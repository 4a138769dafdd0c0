package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// OutputFile is a file the user named with -o FILE, written whole or not at
// all: the bytes go to a temporary file beside the target, renamed over it
// by Commit. Abort, and the cancellation of the context it was created
// with (Ctrl-C, SIGTERM, any signal that cancels the command), remove the
// temporary file, so no failure path leaves one behind.
//
// The file gets the mode a plain shell redirection would give it: an
// existing file keeps its mode, a new one is 0666 less the umask. A
// symbolic link is written through (the link stays, its target is
// replaced), and a device or FIFO (-o /dev/stdout, a named pipe) is
// written into directly, never replaced by a file.
type OutputFile struct {
	f      *os.File
	temp   string // the temporary file; "" when writing straight into a device or FIFO
	target string // the file renamed over (the symlink's target)

	mu      sync.Mutex
	done    bool
	aborted error
	stop    func() bool
	unforce func() // drops the temporary file from RemoveOnForcedExit
}

// CreateOutput opens path for writing whole or not at all (see
// OutputFile). Its errors name path, the user's argument, and match
// FlagError (a path that cannot be written is bad input).
func CreateOutput(ctx context.Context, path string) (*OutputFile, error) {
	fail := func(err error) (*OutputFile, error) {
		return nil, NewFlagError(fmt.Errorf("cannot write -o %s: %w", path, err))
	}
	target, err := resolveLinks(path)
	if err != nil {
		return fail(err)
	}
	o := &OutputFile{target: target}
	st, err := os.Stat(target)
	switch {
	case err == nil && st.IsDir():
		return fail(errors.New("it is a directory"))
	case err == nil && !st.Mode().IsRegular():
		// a device or a FIFO: a rename would replace it with a file
		if o.f, err = os.OpenFile(target, os.O_WRONLY, 0); err != nil {
			if cause, ok := PathCause(err); ok {
				err = cause
			}
			return fail(err)
		}
	default:
		if o.f, err = createTemp(target); err != nil {
			if cause, ok := PathCause(err); ok { // name the user's directory, not the temporary file
				err = fmt.Errorf("%s: %w", filepath.Dir(path), cause)
			}
			return fail(err)
		}
		o.temp = o.f.Name()
		// a second Ctrl-C, which ends tdctl at once, removes it too
		o.unforce = RemoveOnForcedExit(o.temp)
		if st != nil { // keep the existing file's mode (the umask does not apply to chmod)
			if err := o.f.Chmod(st.Mode().Perm()); err != nil {
				o.Abort()
				return fail(err)
			}
		}
	}
	o.stop = context.AfterFunc(ctx, func() { o.abort(ctx.Err()) })
	return o, nil
}

// resolveLinks follows symbolic links from path to the file they name
// (which need not exist yet: a dangling link is written through too).
func resolveLinks(path string) (string, error) {
	for range 40 {
		st, err := os.Lstat(path)
		if err != nil || st.Mode()&fs.ModeSymlink == 0 {
			return path, nil // not a link (or not there: created as it is named)
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", errors.New("too many levels of symbolic links")
}

// createTemp creates an empty file beside target with mode 0666 less the
// umask: os.CreateTemp's 0600 would be kept by the rename, and asking the
// process for its umask (syscall.Umask) changes it for every thread.
func createTemp(target string) (*os.File, error) {
	dir, base := filepath.Dir(target), filepath.Base(target)
	for range 100 {
		name := filepath.Join(dir, "."+base+".tdctl-"+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("%s: cannot pick a temporary file name", dir)
}

// Write writes to the temporary file (or the device).
func (o *OutputFile) Write(p []byte) (int, error) { return o.f.Write(p) }

// Seekable reports whether the output is a temporary file (not a device or
// a FIFO), so that WriteAt and ReadAt work.
func (o *OutputFile) Seekable() bool { return o.temp != "" }

// WriteAt writes at an offset of the temporary file (pwrite): a download
// in ranges puts each where it belongs. Only when Seekable.
func (o *OutputFile) WriteAt(p []byte, off int64) (int, error) {
	if o.temp == "" {
		return 0, errors.New("cannot write at an offset into a device or a FIFO")
	}
	return o.f.WriteAt(p, off)
}

// ReadAt reads back from the temporary file. Only when Seekable.
func (o *OutputFile) ReadAt(p []byte, off int64) (int, error) {
	if o.temp == "" {
		return 0, errors.New("cannot read back from a device or a FIFO")
	}
	return o.f.ReadAt(p, off)
}

// Commit closes the file and renames it into place. After an Abort (or
// the context's cancellation) it fails and leaves nothing.
func (o *OutputFile) Commit() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		if o.aborted != nil {
			return o.aborted
		}
		return errors.New("output file already closed")
	}
	o.done = true
	o.stop()
	if o.unforce != nil {
		defer o.unforce()
	}
	err := o.f.Close()
	if err == nil && o.temp != "" {
		err = os.Rename(o.temp, o.target)
	}
	if err != nil && o.temp != "" {
		os.Remove(o.temp)
	}
	return err
}

// Abort closes and removes the temporary file; it does nothing after
// Commit, so `defer o.Abort()` suits every failure path.
func (o *OutputFile) Abort() { o.abort(errors.New("output file aborted")) }

func (o *OutputFile) abort(why error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return
	}
	o.done, o.aborted = true, why
	if o.stop != nil {
		o.stop()
	}
	o.f.Close()
	if o.temp != "" {
		os.Remove(o.temp)
	}
	if o.unforce != nil {
		o.unforce()
	}
}
