package digdag

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	ignore "github.com/sabhiram/go-gitignore"
)

// maxArchive bounds a project archive (digdag's server refuses large
// ones too; TD Workflow's limit is lower still).
const maxArchive = 512 << 20

// Archive packs a project directory as digdag push does: a tar.gz of every
// file under dir except those whose name (or a parent directory's) starts
// with a dot, and those matched by the .digdagignore file at dir's top
// (gitignore syntax, as digdag reads it). Names are relative, separated by
// "/"; modes are kept. A symbolic link to a place inside dir is stored as
// a link, one pointing outside is refused, as digdag push does without
// --copy-outgoing-symlinks. It returns the archive and the names packed;
// a directory without a .dig file is refused.
func Archive(dir string) ([]byte, []string, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, nil, err
	}
	if !st.IsDir() {
		return nil, nil, invalidArg("%s is not a directory: push takes a project directory", dir)
	}
	var ign *ignore.GitIgnore
	if data, err := os.ReadFile(filepath.Join(root, ".digdagignore")); err == nil {
		ign = ignore.CompileIgnoreLines(strings.Split(string(data), "\n")...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	var names []string
	hasDig := false
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if ign != nil && (ign.MatchesPath(rel) || d.IsDir() && ign.MatchesPath(rel+"/")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			abs := target
			if !filepath.IsAbs(abs) {
				abs = filepath.Join(filepath.Dir(p), target)
			}
			abs = filepath.Clean(abs)
			if abs != root && !strings.HasPrefix(abs, root+string(filepath.Separator)) {
				return invalidArg("symbolic link %s points outside the project directory (%s); copy the file into the project", rel, target)
			}
			link, err := filepath.Rel(filepath.Dir(p), abs)
			if err != nil {
				return err
			}
			hdr := &tar.Header{Typeflag: tar.TypeSymlink, Name: rel, Linkname: filepath.ToSlash(link), Mode: 0o777, ModTime: info.ModTime()}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			names = append(names, rel)
			return nil // a link to a directory is not followed
		case d.IsDir():
			return nil // directories come with their files, as in digdag's archives
		case !info.Mode().IsRegular():
			return nil // sockets, devices: nothing to push
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: rel, Size: info.Size(), Mode: int64(info.Mode().Perm()), ModTime: info.ModTime()}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
		if buf.Len() > maxArchive {
			return invalidArg("the project archive is over %d MiB: add large files to .digdagignore", maxArchive>>20)
		}
		names = append(names, rel)
		if strings.HasSuffix(rel, ".dig") {
			hasDig = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	if !hasDig {
		return nil, nil, invalidArg("%s holds no .dig file: nothing to push", dir)
	}
	sort.Strings(names)
	return buf.Bytes(), names, nil
}
