package compose

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/compose-spec/compose-go/v2/types"
)

// MaxFileBytes bounds every file ergomake reads for a project besides the compose files: env
// files, secret and config files, bind-mounted files. Nothing larger fits in one Kubernetes
// object (1 MiB) anyway.
const MaxFileBytes = 1 << 20

// CheckFile tells whether path is a regular file (symlinks followed) of at most limit bytes:
// what can be read without hanging or exhausting memory. A named pipe (FIFO), a device
// (/dev/zero), a socket or a directory is refused, as is a larger file. The error says which, in
// words that follow the path ("is a named pipe (FIFO), not a regular file").
func CheckFile(path string, limit int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return pathErr(err)
	}
	return checkInfo(fi, limit)
}

func checkInfo(fi fs.FileInfo, limit int64) error {
	m := fi.Mode()
	switch {
	case m.IsRegular():
	case m&fs.ModeNamedPipe != 0:
		return errors.New("is a named pipe (FIFO), not a regular file")
	case m&fs.ModeDevice != 0 || m&fs.ModeCharDevice != 0:
		return errors.New("is a device, not a regular file")
	case m&fs.ModeSocket != 0:
		return errors.New("is a socket, not a regular file")
	case m.IsDir():
		return errors.New("is a directory, not a file")
	default:
		return errors.New("is not a regular file")
	}
	if fi.Size() > limit {
		return fmt.Errorf("is too large (%s; the limit is %s)", HumanBytes(fi.Size()), HumanBytes(limit))
	}
	return nil
}

// ReadFile reads a file that CheckFile accepts, never more than limit bytes, and never blocks on
// a file that became a FIFO after the check.
func ReadFile(path string, limit int64) ([]byte, error) {
	if err := CheckFile(path, limit); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, pathErr(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, pathErr(err)
	}
	if err := checkInfo(fi, limit); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, pathErr(err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("is too large (over %s, the limit)", HumanBytes(limit))
	}
	return b, nil
}

// pathErr drops the path and operation of an *fs.PathError: callers name the file themselves.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// HumanBytes writes a size as "1.5 MiB", "12 KiB" or "100 bytes".
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<20)), ".0") + " MiB"
	case n >= 1<<10:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<10)), ".0") + " KiB"
	}
	return fmt.Sprintf("%d bytes", n)
}

// checkEnvFiles refuses, before compose-go reads them, the env_file and label_file entries that
// could hang the load or exhaust memory (CheckFile). Missing files are compose-go's business
// (required: false tolerates them).
func checkEnvFiles(p *types.Project, files []string) error {
	var loc *Locator
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		check := func(key, path string) error {
			err := CheckFile(path, MaxFileBytes)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if loc == nil {
				loc = NewLocator(files)
			}
			f, line := loc.Find(name, key)
			return &Error{File: f, Line: line, Service: name, Key: key, Msg: fmt.Sprintf("%s %v", path, err), Err: err}
		}
		for _, ef := range s.EnvFiles {
			if err := check("env_file", ef.Path); err != nil {
				return err
			}
		}
		for _, lf := range s.LabelFiles {
			if err := check("label_file", lf); err != nil {
				return err
			}
		}
		for _, h := range s.PreStart {
			for _, ef := range h.EnvFiles {
				if err := check("pre_start", ef.Path); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
