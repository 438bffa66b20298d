package main

import (
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseMappings(t *testing.T) {
	got, err := parseMappings(strings.Fields("0 1000 1 1 100000 65536"))
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{{0, 1000, 1}, {1, 100000, 65536}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if mapText(got) != "0 1000 1\n1 100000 65536\n" {
		t.Errorf("map text %q", mapText(got))
	}
	for _, bad := range []string{"", "0 1000", "0 1000 1 1", "0 x 1", "0 1000 0", "-1 1000 1", "0 4294967295 1", "0 4294967290 10", "4294967290 0 10", "0 1000 99999999999"} {
		if _, err := parseMappings(strings.Fields(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseSubIDs(t *testing.T) {
	db := `# comment
user:100000:65536
other:200000:65536

1000:300000:10
user:bad:10
user:400000:0
user:500000
user:600000:5
`
	got, err := parseSubIDs(strings.NewReader(db), "user", 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []subRange{{100000, 65536}, {300000, 10}, {600000, 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, _ := parseSubIDs(strings.NewReader(db), "nobody", 65534); len(got) != 0 {
		t.Errorf("another user gets %v", got)
	}
}

func TestVerify(t *testing.T) {
	subs := []subRange{{100000, 65536}, {165536, 10}, {300000, 10}}
	for _, c := range []struct {
		name    string
		ms      string
		ok, sub bool
	}{
		{"own id and the subordinate range (RootlessKit's map)", "0 1000 1 1 100000 65536", true, true},
		{"own id alone", "0 1000 1", true, false},
		{"own id with a count above 1", "0 1000 2", false, false},
		{"someone else's id", "0 1001 1", false, false},
		{"root", "0 0 1", false, false},
		{"part of a range", "5 100010 100", true, true},
		{"across adjacent entries", "1 100000 65546", true, true},
		{"past the adjacent entries", "1 100000 65547", false, false},
		{"across a gap", "1 165540 134470", false, false},
		{"starts before the range", "0 99999 2", false, false},
		{"a second, separate entry", "0 300000 10", true, true},
		{"one good, one bad", "0 1000 1 1 100000 65536 70000 0 1", false, false},
	} {
		ms, err := parseMappings(strings.Fields(c.ms))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		sub, err := verify(ms, subs, 1000)
		if (err == nil) != c.ok || (c.ok && sub != c.sub) {
			t.Errorf("%s (%s): allowed %v from subordinate ids %v (err %v), want allowed %v from subordinate ids %v", c.name, c.ms, err == nil, sub, err, c.ok, c.sub)
		}
	}
	if _, err := verify([]mapping{{0, 100000, 1}}, nil, 1000); err == nil {
		t.Error("a subordinate range without /etc/subuid entries is allowed")
	}
}

func TestCheckOwner(t *testing.T) {
	if err := checkOwner(1000, 1000, 1000, 1000, 1000, 1000); err != nil {
		t.Errorf("own process refused: %v", err)
	}
	for _, c := range [][6]uint64{
		{1000, 1000, 1000, 1000, 0, 0},       // root's process
		{1000, 1000, 1000, 1000, 1001, 1000}, // another user's
		{1000, 1000, 1000, 1000, 1000, 5},    // another group's
		{1000, 5, 1000, 1000, 1000, 5},       // caller's real gid is not its passwd gid
		{1000, 1000, 1001, 1000, 1000, 1000}, // passwd entry of another uid
	} {
		if err := checkOwner(c[0], c[1], c[2], c[3], c[4], c[5]); err == nil {
			t.Errorf("%v allowed", c)
		}
	}
}

func TestCheckRoot(t *testing.T) {
	if err := checkRoot(0); err != nil {
		t.Error(err)
	}
	if err := checkRoot(1000); err == nil || !strings.Contains(err.Error(), "allowPrivilegeEscalation") {
		t.Errorf("uid 1000: %v", err)
	}
}

func TestKind(t *testing.T) {
	if k, _ := kind("newuidmap"); k != "uid" {
		t.Errorf("newuidmap: %q", k)
	}
	if k, _ := kind("newgidmap"); k != "gid" {
		t.Errorf("newgidmap: %q", k)
	}
	if _, err := kind("newidmap"); err == nil {
		t.Error("newidmap: no error")
	}
}

// TestWriteMaps writes real maps, as run does, to a child in a new user namespace: the kernel
// takes them as written, and setgroups is denied before gid_map when asked to.
func TestWriteMaps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SETUID and CAP_SETGID over the mapped ids)")
	}
	for _, policy := range []string{"allow", "deny"} {
		t.Run(policy, func(t *testing.T) {
			cmd := exec.Command("sleep", "30")
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
			if err := cmd.Start(); err != nil {
				t.Skipf("cannot create a user namespace here: %v", err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
			dir, err := unix.Open(proc, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(dir)
			ms := []mapping{{0, 1000, 1}, {1, 100000, 65536}}
			if err := writeSetgroups(dir, policy); err != nil {
				t.Fatal(err)
			}
			if err := writeSetgroups(dir, policy); err != nil { // already so: left alone
				t.Fatal(err)
			}
			for _, k := range []string{"uid", "gid"} {
				if err := writeAt(dir, k+"_map", mapText(ms)); err != nil {
					t.Fatalf("%s_map: %v", k, err)
				}
				b, err := os.ReadFile(proc + "/" + k + "_map")
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(strings.Fields(string(b)), " "); got != "0 1000 1 1 100000 65536" {
					t.Errorf("%s_map: %q", k, b)
				}
			}
			if b, _ := os.ReadFile(proc + "/setgroups"); strings.TrimSpace(string(b)) != policy {
				t.Errorf("setgroups %q, want %s", b, policy)
			}
			if err := writeAt(dir, "uid_map", mapText(ms)); err == nil {
				t.Error("uid_map written twice")
			}
		})
	}
}

// TestActAsCaller: as the caller (uid 1000) with only CAP_SETUID, the subordinate ids are mapped
// into the caller's own new namespace, not into another user's: root's other capabilities are gone.
func TestActAsCaller(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, c := range []struct {
		owner uint32
		ok    bool
	}{{1000, true}, {1001, false}} {
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("needs unshare (util-linux)")
		}
		// as the user, unshare creates the namespace and becomes sleep (same process)
		cmd := exec.Command(unshare, "--user", "sleep", "30")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: c.owner, Gid: c.owner, NoSetGroups: true}}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitUserNS(t, cmd.Process.Pid)
		errc := make(chan error)
		go func() { // a thread of its own: it stays uid 1000 and ends with the goroutine
			runtime.LockOSThread()
			if err := actAsCaller(1000, unix.CAP_SETUID); err != nil {
				errc <- err
				return
			}
			dir, err := unix.Open("/proc/"+strconv.Itoa(cmd.Process.Pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- err
				return
			}
			defer unix.Close(dir)
			errc <- writeAt(dir, "uid_map", "0 1000 1\n1 100000 65536\n")
		}()
		err = <-errc
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if (err == nil) != c.ok {
			t.Errorf("namespace of uid %d: mapped %v (%v), want %v", c.owner, err == nil, err, c.ok)
		}
	}
	if os.Geteuid() != 0 {
		t.Error("the test process lost root: actAsCaller changed more than its thread")
	}
}

// waitUserNS waits until process pid runs in a user namespace other than this process's.
func waitUserNS(t *testing.T, pid int) {
	t.Helper()
	self, _ := os.Readlink("/proc/self/ns/user")
	for range 200 {
		if ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/user"); err == nil && ns != self {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d never entered a user namespace of its own", pid)
}
