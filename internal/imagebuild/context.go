package imagebuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	gofs "io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
)

// treeDigest hashes what of dir a build would see: the files, folders and
// links left by the exclude patterns (the same filter the session's file
// sync applies), with their paths, modes, link targets and contents.
// Times and owners are left out: they do not reach the image's content
// (the sync resets owners) and change on every checkout.
func treeDigest(dir string, excludes []string) (string, error) {
	base, err := fsutil.NewFS(dir)
	if err != nil {
		return "", err
	}
	fs, err := fsutil.NewFilterFS(base, &fsutil.FilterOpt{ExcludePatterns: excludes})
	if err != nil {
		return "", err
	}
	h := sha256.New()
	buf := make([]byte, 64<<10)
	err = fs.Walk(context.Background(), "", func(p string, d gofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*fstypes.Stat)
		if !ok {
			return fmt.Errorf("%s: no stat information", p)
		}
		fmt.Fprintf(h, "%s\x00%o\x00%s\x00", filepath.ToSlash(p), st.Mode, st.Linkname)
		if fi.Mode().IsRegular() {
			fh, err := base.Open(p)
			if err != nil {
				return err
			}
			fsum := sha256.New()
			_, err = io.CopyBuffer(fsum, fh, buf)
			_ = fh.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			h.Write(fsum.Sum(nil))
		}
		h.Write([]byte{'\n'})
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// countingFS is an fsutil.FS that counts what the builder reads of it: the
// file sync sends a file's content only when the builder asks for it (it
// is new or changed since the builder's last copy), and excluded files are
// never walked, so what is read is what is sent.
type countingFS struct {
	fsutil.FS
	sent  *atomic.Int64
	mu    sync.Mutex
	paths map[string]int64 // bytes sent per top-level path
}

func newCountingFS(dir string, sent *atomic.Int64) (*countingFS, error) {
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, err
	}
	return &countingFS{FS: fs, sent: sent, paths: map[string]int64{}}, nil
}

func (c *countingFS) Open(p string) (io.ReadCloser, error) {
	rc, err := c.FS.Open(p)
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: rc, fs: c, path: p}, nil
}

func (c *countingFS) add(p string, n int64) {
	c.sent.Add(n)
	top := filepath.ToSlash(filepath.Clean(p))
	if i := strings.IndexByte(top, '/'); i >= 0 {
		top = top[:i+1] // a folder: "node_modules/"
	}
	c.mu.Lock()
	c.paths[top] += n
	c.mu.Unlock()
}

// biggest returns up to n top-level paths by bytes sent, largest first.
func (c *countingFS) biggest(n int) []pathSize {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]pathSize, 0, len(c.paths))
	for p, s := range c.paths {
		out = append(out, pathSize{p, s})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].size != out[j].size {
			return out[i].size > out[j].size
		}
		return out[i].path < out[j].path
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

type pathSize struct {
	path string
	size int64
}

type countingReader struct {
	io.ReadCloser
	fs   *countingFS
	path string
}

func (r *countingReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	if n > 0 {
		r.fs.add(r.path, int64(n))
	}
	return n, err
}

// humanBytes formats n as 1.5 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
