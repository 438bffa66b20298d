// Command newidmap is shadow's newuidmap and newgidmap (it acts as the one it is run as) for the
// local cluster's rootless builder image, where it is installed setuid root as
// /usr/bin/newuidmap and /usr/bin/newgidmap: RootlessKit runs them to give the user namespace it
// creates for buildkitd the user's subordinate ids. Debian's are dynamically linked; this one is
// static and keeps shadow's rules:
//
//		newuidmap PID ID-INSIDE ID-OUTSIDE COUNT [ID-INSIDE ID-OUTSIDE COUNT ...]
//
//	  - the caller's real uid and gid are those of its /etc/passwd entry, and own the process PID;
//	  - each range of outside ids lies in the caller's /etc/subuid (/etc/subgid) entries, by name or
//	    id, or is exactly the caller's own uid (gid), count 1;
//	  - newgidmap writes /proc/PID/setgroups first: "deny" when only the own gid was mapped,
//	    otherwise it leaves it (or sets it to) "allow";
//	  - the map is written to /proc/PID/uid_map (gid_map) at once, through the directory opened for
//	    the ownership check, so a recycled PID cannot be mapped instead;
//	  - before it opens those files it acts as the caller with only CAP_SETUID (CAP_SETGID): the
//	    kernel lets the opener of a map file change a namespace it owns, and the capability maps
//	    the subordinate ids. Root alone would not do: in a container it lacks CAP_SYS_ADMIN, which
//	    the kernel then wants over the caller's new namespace.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	prog := filepath.Base(os.Args[0])
	if err := run(prog, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(1)
	}
}

// kind is what a program name maps: "uid" or "gid".
func kind(prog string) (string, error) {
	switch prog {
	case "newuidmap":
		return "uid", nil
	case "newgidmap":
		return "gid", nil
	}
	return "", fmt.Errorf("run me as newuidmap or newgidmap, not %s", prog)
}

func run(prog string, args []string) error {
	k, err := kind(prog)
	if err != nil {
		return err
	}
	if len(args) < 4 {
		return fmt.Errorf("usage: %s PID ID-INSIDE ID-OUTSIDE COUNT [ID-INSIDE ID-OUTSIDE COUNT ...]", prog)
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil || pid <= 0 {
		return fmt.Errorf("%q is not a process id", args[0])
	}
	ms, err := parseMappings(args[1:])
	if err != nil {
		return err
	}
	if err := checkRoot(unix.Geteuid()); err != nil {
		return err
	}
	ruid, rgid := uint64(unix.Getuid()), uint64(unix.Getgid())
	pw, err := user.LookupId(strconv.FormatUint(ruid, 10))
	if err != nil {
		return fmt.Errorf("no passwd entry for uid %d: %w", ruid, err)
	}
	pwUID, err1 := strconv.ParseUint(pw.Uid, 10, 32)
	pwGID, err2 := strconv.ParseUint(pw.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("passwd entry of uid %d: %w", ruid, err)
	}

	dir, err := unix.Open("/proc/"+strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	defer unix.Close(dir)
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if err := checkOwner(ruid, rgid, pwUID, pwGID, uint64(st.Uid), uint64(st.Gid)); err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}

	own, db := ruid, "/etc/subuid"
	if k == "gid" {
		own, db = rgid, "/etc/subgid"
	}
	f, err := os.Open(db)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var subs []subRange
	if f != nil {
		subs, err = parseSubIDs(f, pw.Username, ruid)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", db, err)
		}
	}
	fromSub, err := verify(ms, subs, own)
	if err != nil {
		return err
	}
	capability := uintptr(unix.CAP_SETUID)
	if k == "gid" {
		capability = unix.CAP_SETGID
	}
	runtime.LockOSThread() // credentials and capabilities are per thread: this one writes; it dies with the process
	if err := actAsCaller(int(ruid), capability); err != nil {
		return err
	}
	if k == "gid" {
		policy := "deny"
		if fromSub {
			policy = "allow"
		}
		if err := writeSetgroups(dir, policy); err != nil {
			return fmt.Errorf("process %d: setgroups: %w", pid, err)
		}
	}
	if err := writeAt(dir, k+"_map", mapText(ms)); err != nil {
		return fmt.Errorf("process %d: %s_map: %w", pid, k, err)
	}
	return nil
}

// actAsCaller makes this thread's effective uid the caller's real uid ruid, the saved uid still
// root, with the one capability capability left effective and permitted (shadow's newuidmap does
// the same). The caller must hold the thread (runtime.LockOSThread): the raw system calls change
// only it.
func actAsCaller(ruid int, capability uintptr) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keeping capabilities: %w", err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(ruid), ^uintptr(0)); e != 0 {
		return fmt.Errorf("acting as uid %d: %w", ruid, e)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	data[capability/32].Effective = 1 << (capability % 32)
	data[capability/32].Permitted = data[capability/32].Effective
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("dropping capabilities: %w", err)
	}
	return nil
}

// writeSetgroups sets /proc/PID/setgroups to policy unless it already is: the file can be written
// only before gid_map, and a kernel without it has nothing to restrict.
func writeSetgroups(dir int, policy string) error {
	fd, err := unix.Openat(dir, "setgroups", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 16)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(buf[:n])) == policy {
		return nil
	}
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return err
	}
	_, err = unix.Write(fd, []byte(policy+"\n"))
	return err
}

// writeAt writes text to the file name of the directory dir in one write, as the id map files need.
func writeAt(dir int, name, text string) error {
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	n, err := unix.Write(fd, []byte(text))
	if err == nil && n != len(text) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(text))
	}
	return err
}
