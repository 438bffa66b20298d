package translate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ergomake/ergomake/internal/compose"
)

// Files is where translate reads the files a project points at (Options.Files): the local disk
// (nil, compose.Disk), a Recorder of it on the CLI, MapFiles of what the CLI recorded on the
// ergomake server, which never reads its own disk for a user's project.
type Files = compose.FS

// FilesManifestKey is the entry of a Recorder's Files that is not a file: what translate learnt
// of the files besides their contents (modes, sizes, folders, symbolic links and what they
// resolve to, errors), as JSON. It is not an absolute path, so no file can take its place.
const FilesManifestKey = "ergomake:manifest"

// manifest is what a Recorder saw, by absolute path.
type manifest struct {
	Stat  map[string]infoRec `json:"stat,omitempty"`
	Lstat map[string]infoRec `json:"lstat,omitempty"`
	Links map[string]linkRec `json:"links,omitempty"`
	Dirs  map[string]dirRec  `json:"dirs,omitempty"`
	// Reads are the reads that failed other than on the size or kind of the file (which Stat
	// tells again).
	Reads map[string]*errRec `json:"reads,omitempty"`
}

type infoRec struct {
	Mode fs.FileMode `json:"mode"`
	Size int64       `json:"size"`
	Err  *errRec     `json:"err,omitempty"`
}

type linkRec struct {
	Target string  `json:"target,omitempty"`
	Err    *errRec `json:"err,omitempty"`
}

type dirRec struct {
	Entries []direntRec `json:"entries,omitempty"`
	Err     *errRec     `json:"err,omitempty"`
}

type direntRec struct {
	Name string      `json:"name"`
	Type fs.FileMode `json:"type"`
}

// errRec is an error as translate shows it: its message (without the path of an *fs.PathError,
// whose operation Op keeps) and whether it means the file does not exist.
type errRec struct {
	Op       string `json:"op,omitempty"`
	Msg      string `json:"msg"`
	NotExist bool   `json:"notExist,omitempty"`
}

func recordErr(err error) *errRec {
	if err == nil {
		return nil
	}
	e := &errRec{Msg: err.Error(), NotExist: errors.Is(err, fs.ErrNotExist)}
	if pe, ok := err.(*fs.PathError); ok {
		e.Op, e.Msg = pe.Op, pe.Err.Error()
	}
	return e
}

func (e *errRec) err(path string) error {
	inner := fileError{msg: e.Msg, notExist: e.NotExist}
	if e.Op != "" {
		return &fs.PathError{Op: e.Op, Path: path, Err: inner}
	}
	return inner
}

// fileError is a recorded error: the same message, and errors.Is(err, fs.ErrNotExist) when it was.
type fileError struct {
	msg      string
	notExist bool
}

func (e fileError) Error() string { return e.msg }
func (e fileError) Is(target error) bool {
	return e.notExist && target == fs.ErrNotExist
}

// notExist is the error of a file that is not there ("no such file or directory", as on Linux
// and macOS).
func notExist(op, path string) error {
	return (&errRec{Op: op, Msg: "no such file or directory", NotExist: true}).err(path)
}

// Recorder reads the files through Base (nil: the local disk) and records everything it read
// and learnt: pass it as Options.Files, then send Files() with the project to the ergomake
// server (ApplyRequest.Files), which translates from MapFiles of it to the same Result. The zero
// Recorder is ready to use; it is safe for concurrent use.
type Recorder struct {
	Base Files

	mu    sync.Mutex
	files map[string][]byte
	m     manifest
}

// NewRecorder records reads of the local disk.
func NewRecorder() *Recorder { return &Recorder{} }

func (r *Recorder) base() Files { return compose.OrDisk(r.Base) }

func (r *Recorder) record(f func(m *manifest)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m.Stat == nil {
		r.m = manifest{Stat: map[string]infoRec{}, Lstat: map[string]infoRec{}, Links: map[string]linkRec{},
			Dirs: map[string]dirRec{}, Reads: map[string]*errRec{}}
		r.files = map[string][]byte{}
	}
	f(&r.m)
}

func infoOf(fi fs.FileInfo, err error) infoRec {
	if err != nil {
		return infoRec{Err: recordErr(err)}
	}
	return infoRec{Mode: fi.Mode(), Size: fi.Size()}
}

// Stat implements Files.
func (r *Recorder) Stat(path string) (fs.FileInfo, error) {
	fi, err := r.base().Stat(path)
	r.record(func(m *manifest) { m.Stat[path] = infoOf(fi, err) })
	return fi, err
}

// Lstat implements Files.
func (r *Recorder) Lstat(path string) (fs.FileInfo, error) {
	fi, err := r.base().Lstat(path)
	r.record(func(m *manifest) { m.Lstat[path] = infoOf(fi, err) })
	return fi, err
}

// ReadDir implements Files.
func (r *Recorder) ReadDir(path string) ([]fs.DirEntry, error) {
	entries, err := r.base().ReadDir(path)
	rec := dirRec{Err: recordErr(err)}
	for _, e := range entries {
		rec.Entries = append(rec.Entries, direntRec{Name: e.Name(), Type: e.Type()})
	}
	r.record(func(m *manifest) { m.Dirs[path] = rec })
	return entries, err
}

// EvalSymlinks implements Files.
func (r *Recorder) EvalSymlinks(path string) (string, error) {
	target, err := r.base().EvalSymlinks(path)
	r.record(func(m *manifest) { m.Links[path] = linkRec{Target: target, Err: recordErr(err)} })
	return target, err
}

// ReadFile implements Files. The file's Stat is recorded with it, so that the server checks its
// kind and size again.
func (r *Recorder) ReadFile(path string, limit int64) ([]byte, error) {
	b, err := r.base().ReadFile(path, limit)
	fi, serr := r.base().Stat(path)
	r.record(func(m *manifest) {
		m.Stat[path] = infoOf(fi, serr)
		if err == nil {
			r.files[path] = b
			if serr == nil && fi.Mode().IsRegular() {
				m.Stat[path] = infoRec{Mode: fi.Mode(), Size: int64(len(b))}
			}
			delete(m.Reads, path)
			return
		}
		if serr == nil && compose.CheckInfo(fi, limit) != nil {
			return // the server finds the same from the recorded Stat
		}
		if _, ok := r.files[path]; !ok {
			m.Reads[path] = recordErr(err)
		}
	})
	return b, err
}

// Files returns every file read (absolute path → contents) and, under FilesManifestKey, what
// else was learnt of them: ApplyRequest.Files.
func (r *Recorder) Files() map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]byte, len(r.files)+1)
	for k, v := range r.files {
		out[k] = v
	}
	b, err := json.Marshal(r.m)
	if err != nil {
		panic(err) // strings, numbers and maps of them
	}
	out[FilesManifestKey] = b
	return out
}

// MapFiles serves files recorded by a Recorder (its Files()): translate on the ergomake server
// reads them as it would have read the user's disk, and reaches nothing else. A file missing from
// files does not exist (the error names the file, the service and the key, as on the disk).
// Entries without a manifest are regular files (mode 0644); folders are implied by the paths
// below them. A malformed manifest is an error.
func MapFiles(files map[string][]byte) (Files, error) {
	m := &mapFiles{files: map[string][]byte{}}
	for k, v := range files {
		if k == FilesManifestKey {
			if err := json.Unmarshal(v, &m.m); err != nil {
				return nil, fmt.Errorf("files: %s: %w", FilesManifestKey, err)
			}
			continue
		}
		if !filepath.IsAbs(k) {
			return nil, fmt.Errorf("files: %q is not an absolute path", k)
		}
		m.files[filepath.Clean(k)] = v
	}
	return m, nil
}

type mapFiles struct {
	files map[string][]byte
	m     manifest
}

// implied answers for a path the manifest does not know: a file of files, a folder above one,
// or nothing.
func (m *mapFiles) implied(op, path string) (fs.FileInfo, error) {
	path = filepath.Clean(path)
	if b, ok := m.files[path]; ok {
		return fileInfo{name: filepath.Base(path), size: int64(len(b)), mode: 0o644}, nil
	}
	prefix := strings.TrimSuffix(path, string(filepath.Separator)) + string(filepath.Separator)
	for k := range m.files {
		if strings.HasPrefix(k, prefix) {
			return fileInfo{name: filepath.Base(path), mode: fs.ModeDir | 0o755}, nil
		}
	}
	return nil, notExist(op, path)
}

func (m *mapFiles) info(rec infoRec, ok bool, op, path string) (fs.FileInfo, error) {
	if !ok {
		return m.implied(op, path)
	}
	if rec.Err != nil {
		return nil, rec.Err.err(path)
	}
	return fileInfo{name: filepath.Base(path), size: rec.Size, mode: rec.Mode}, nil
}

func (m *mapFiles) Stat(path string) (fs.FileInfo, error) {
	rec, ok := m.m.Stat[path]
	return m.info(rec, ok, "stat", path)
}

func (m *mapFiles) Lstat(path string) (fs.FileInfo, error) {
	rec, ok := m.m.Lstat[path]
	if !ok {
		rec, ok = m.m.Stat[path]
		if ok && rec.Err == nil && rec.Mode&fs.ModeSymlink != 0 {
			ok = false
		}
	}
	return m.info(rec, ok, "lstat", path)
}

func (m *mapFiles) EvalSymlinks(path string) (string, error) {
	if rec, ok := m.m.Links[path]; ok {
		if rec.Err != nil {
			return "", rec.Err.err(path)
		}
		return rec.Target, nil
	}
	if _, err := m.implied("lstat", path); err != nil {
		return "", err
	}
	return filepath.Clean(path), nil
}

func (m *mapFiles) ReadDir(path string) ([]fs.DirEntry, error) {
	var out []fs.DirEntry
	if rec, ok := m.m.Dirs[path]; ok {
		for _, e := range rec.Entries {
			out = append(out, dirEntry{m: m, path: filepath.Join(path, e.Name), name: e.Name, typ: e.Type})
		}
		if rec.Err != nil {
			return out, rec.Err.err(path)
		}
		return out, nil
	}
	fi, err := m.implied("open", path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "readdirent", Path: path, Err: fileError{msg: "not a directory"}}
	}
	prefix := filepath.Clean(path) + string(filepath.Separator)
	seen := map[string]bool{}
	for k := range m.files {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || rest == "" {
			continue
		}
		name, below, _ := strings.Cut(rest, string(filepath.Separator))
		if seen[name] {
			continue
		}
		seen[name] = true
		typ := fs.FileMode(0)
		if below != "" {
			typ = fs.ModeDir
		}
		out = append(out, dirEntry{m: m, path: prefix + name, name: name, typ: typ})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// ReadFile checks the file's kind and size as compose.ReadFile does, from its recorded Stat,
// then its contents against limit.
func (m *mapFiles) ReadFile(path string, limit int64) ([]byte, error) {
	fi, err := m.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	if err := compose.CheckInfo(fi, limit); err != nil {
		return nil, err
	}
	b, ok := m.files[filepath.Clean(path)]
	if !ok {
		if rec := m.m.Reads[path]; rec != nil {
			return nil, fileError{msg: rec.Msg, notExist: rec.NotExist}
		}
		return nil, fileError{msg: "no such file or directory", notExist: true}
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("is too large (over %s, the limit)", compose.HumanBytes(limit))
	}
	return b, nil
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return f.mode }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fileInfo) Sys() any           { return nil }

type dirEntry struct {
	m    *mapFiles
	path string
	name string
	typ  fs.FileMode
}

func (d dirEntry) Name() string               { return d.name }
func (d dirEntry) IsDir() bool                { return d.typ.IsDir() }
func (d dirEntry) Type() fs.FileMode          { return d.typ.Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return d.m.Lstat(d.path) }
