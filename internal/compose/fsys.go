package compose

import (
	"io/fs"
	"os"
	"path/filepath"
)

// FS is where the files a project points at are read (bind-mounted files and folders, secret and
// config files, the compose files the Locator parses): the local disk (Disk), or, on the ergomake
// server, the files the CLI shipped with the project (translate.MapFiles). Paths are absolute.
type FS interface {
	// Stat follows symbolic links, Lstat does not.
	Stat(path string) (fs.FileInfo, error)
	Lstat(path string) (fs.FileInfo, error)
	// ReadDir lists a folder, sorted by name.
	ReadDir(path string) ([]fs.DirEntry, error)
	// EvalSymlinks is filepath.EvalSymlinks.
	EvalSymlinks(path string) (string, error)
	// ReadFile reads a regular file of at most limit bytes as ReadFile does: its errors do not
	// repeat the path ("is a named pipe (FIFO), not a regular file").
	ReadFile(path string, limit int64) ([]byte, error)
}

// Disk is the local disk.
var Disk FS = diskFS{}

type diskFS struct{}

func (diskFS) Stat(path string) (fs.FileInfo, error)      { return os.Stat(path) }
func (diskFS) Lstat(path string) (fs.FileInfo, error)     { return os.Lstat(path) }
func (diskFS) ReadDir(path string) ([]fs.DirEntry, error) { return os.ReadDir(path) }
func (diskFS) EvalSymlinks(path string) (string, error)   { return filepath.EvalSymlinks(path) }
func (diskFS) ReadFile(path string, limit int64) ([]byte, error) {
	return ReadFile(path, limit)
}

// OrDisk is fsys, or Disk when it is nil.
func OrDisk(fsys FS) FS {
	if fsys == nil {
		return Disk
	}
	return fsys
}

// CheckInfo is CheckFile of what Stat returned: whether it is a regular file of at most limit
// bytes, and if not what it is, in words that follow the path.
func CheckInfo(fi fs.FileInfo, limit int64) error { return checkInfo(fi, limit) }

// CheckFileFS is CheckFile on fsys.
func CheckFileFS(fsys FS, path string, limit int64) error {
	fi, err := OrDisk(fsys).Stat(path)
	if err != nil {
		return pathErr(err)
	}
	return checkInfo(fi, limit)
}

// WalkDir is filepath.WalkDir on fsys: root first, then each folder's entries in lexical order;
// symbolic links are not followed.
func WalkDir(fsys FS, root string, fn fs.WalkDirFunc) error {
	fsys = OrDisk(fsys)
	info, err := fsys.Lstat(root)
	if err != nil {
		err = fn(root, nil, err)
	} else {
		err = walkDir(fsys, root, fs.FileInfoToDirEntry(info), fn)
	}
	if err == filepath.SkipDir || err == filepath.SkipAll {
		return nil
	}
	return err
}

func walkDir(fsys FS, path string, d fs.DirEntry, fn fs.WalkDirFunc) error {
	if err := fn(path, d, nil); err != nil || !d.IsDir() {
		if err == filepath.SkipDir && d.IsDir() {
			err = nil
		}
		return err
	}
	entries, err := fsys.ReadDir(path)
	if err != nil {
		if err = fn(path, d, err); err != nil {
			if err == filepath.SkipDir && d.IsDir() {
				err = nil
			}
			return err
		}
	}
	for _, e := range entries {
		if err := walkDir(fsys, filepath.Join(path, e.Name()), e, fn); err != nil {
			if err == filepath.SkipDir {
				break
			}
			return err
		}
	}
	return nil
}

// MaxComposeFileBytes bounds a compose file the Locator reads through an FS.
const MaxComposeFileBytes = 4 << 20
