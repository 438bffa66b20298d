package translate

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/testutil/fixtures"
)

// shipped is what the ergomake server receives: the project and the recorded files, both through
// JSON as on the wire.
func shipped(t *testing.T, p *types.Project, files map[string][]byte) (*types.Project, Files) {
	t.Helper()
	pj, err := EncodeProject(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := DecodeProject(pj)
	if err != nil {
		t.Fatal(err)
	}
	fj, err := json.Marshal(files)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string][]byte
	if err := json.Unmarshal(fj, &back); err != nil {
		t.Fatal(err)
	}
	mf, err := MapFiles(back)
	if err != nil {
		t.Fatal(err)
	}
	return q, mf
}

// sameFromRecorded translates p from the disk, through a Recorder, and from MapFiles of what the
// Recorder saw (with the project through JSON, as the server gets it), and fails unless the
// three give the same Result, or the same error.
func sameFromRecorded(t *testing.T, name string, p *types.Project, opts Options) {
	t.Helper()
	opts.Files = nil
	want, werr := Translate(p, opts)
	rec := NewRecorder()
	opts.Files = rec
	got, gerr := Translate(p, opts)
	same(t, name+" (recorder)", want, werr, got, gerr)
	q, mf := shipped(t, p, rec.Files())
	if !reflect.DeepEqual(p, q) {
		t.Errorf("%s: the project differs after EncodeProject and DecodeProject", name)
	}
	opts.Files = mf
	got, gerr = Translate(q, opts)
	same(t, name+" (from the recorded files)", want, werr, got, gerr)
}

func same(t *testing.T, name string, want *Result, werr error, got *Result, gerr error) {
	t.Helper()
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Errorf("%s: error %v, from the disk %v", name, gerr, werr)
		return
	}
	if !reflect.DeepEqual(want, got) {
		wj, _ := json.MarshalIndent(want, "", " ")
		gj, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("%s: the Result differs from the disk's:\n%s", name, diff(string(wj), string(gj)))
	}
}

// TestFixturesSameFromRecordedFiles: every shared compose fixture translates to the same Result
// (or fails with the same error) from the files a Recorder recorded as from the disk.
func TestFixturesSameFromRecordedFiles(t *testing.T) {
	root, all := fixtures.Load(t)
	n := 0
	for _, f := range all {
		dir := filepath.Join(root, f.Path)
		p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, Files: f.Files, EnvFiles: f.EnvFiles, Environ: f.Environ()})
		if err != nil {
			continue
		}
		sameFromRecorded(t, f.Path, p, Options{})
		n++
	}
	if n == 0 {
		t.Fatal("no fixture loaded")
	}
	t.Logf("%d fixtures compared", n)
}

// TestRecordedFilesServeNothingElse: MapFiles knows only what it was given; a file that is not
// there is the same error, naming the file, the service and the key, as a missing file on disk.
func TestRecordedFilesServeNothingElse(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    image: example/app\n    secrets: [token]\nsecrets:\n  token:\n    file: ./token.txt\n",
		"token.txt":    "s3cret",
	})
	p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder()
	if _, err := Translate(p, Options{Files: rec}); err != nil {
		t.Fatal(err)
	}
	files := rec.Files()
	token := filepath.Join(dir, "token.txt")
	if string(files[token]) != "s3cret" {
		t.Fatalf("the recorder did not record %s: %v", token, files)
	}
	if _, ok := files[filepath.Join(dir, "compose.yaml")]; !ok {
		t.Errorf("the compose file was not recorded (the Locator reads it)")
	}
	// The server's own disk is never read: the file exists on disk, not in the map.
	delete(files, token)
	q, mf := shipped(t, p, files)
	_, serr := Translate(q, Options{Files: mf})
	must(t, os.Remove(token))
	_, derr := Translate(p, Options{})
	if serr == nil || derr == nil || serr.Error() != derr.Error() {
		t.Fatalf("missing file: server %v, disk %v", serr, derr)
	}
	var ce *compose.Error
	if !errors.As(serr, &ce) || ce.Service != "app" || ce.Key != "secrets" || !strings.Contains(ce.Error(), "token.txt") || ce.Line == 0 {
		t.Errorf("the error does not name file, line, service and key: %#v", serr)
	}
}

// TestMapFilesPlain: a map without a manifest serves regular files and the folders above them.
func TestMapFilesPlain(t *testing.T) {
	mf, err := MapFiles(map[string][]byte{"/p/conf/a.txt": []byte("a"), "/p/conf/sub/b.txt": []byte("bb")})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := mf.Stat("/p/conf")
	if err != nil || !fi.IsDir() {
		t.Fatalf("Stat(/p/conf) = %v, %v", fi, err)
	}
	entries, err := mf.ReadDir("/p/conf")
	if err != nil || len(entries) != 2 || entries[0].Name() != "a.txt" || entries[1].Name() != "sub" || !entries[1].IsDir() {
		t.Fatalf("ReadDir = %v, %v", entries, err)
	}
	if b, err := mf.ReadFile("/p/conf/sub/b.txt", 10); err != nil || string(b) != "bb" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if _, err := mf.ReadFile("/p/conf/sub/b.txt", 1); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("ReadFile over the limit: %v", err)
	}
	if _, err := mf.Stat("/etc/passwd"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(/etc/passwd) = %v, want not exist", err)
	}
	if _, err := mf.EvalSymlinks("/p/nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("EvalSymlinks(missing) = %v", err)
	}
	if _, err := MapFiles(map[string][]byte{"relative/x": nil}); err == nil {
		t.Fatal("a relative path was accepted")
	}
	if _, err := MapFiles(map[string][]byte{FilesManifestKey: []byte("{")}); err == nil {
		t.Fatal("a malformed manifest was accepted")
	}
}
