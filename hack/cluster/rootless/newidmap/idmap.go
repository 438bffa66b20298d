package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// mapping is one line of a uid_map or gid_map: count ids starting at inside (in the new user
// namespace) are ids starting at outside (in the caller's namespace).
type mapping struct{ inside, outside, count uint64 }

// subRange is one /etc/subuid or /etc/subgid entry's range: count ids starting at start.
type subRange struct{ start, count uint64 }

// maxID bounds ids: uid_t is 32 bits and (uid_t)-1 is never a valid id.
const maxID = math.MaxUint32 - 1

// parseMappings reads the command line's mapping triples "INSIDE OUTSIDE COUNT ...".
func parseMappings(args []string) ([]mapping, error) {
	if len(args) == 0 || len(args)%3 != 0 {
		return nil, errors.New("want mappings as triples: ID-INSIDE ID-OUTSIDE COUNT [...]")
	}
	var out []mapping
	for i := 0; i < len(args); i += 3 {
		var v [3]uint64
		for j := range v {
			n, err := strconv.ParseUint(args[i+j], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("mapping %q: %q is not an id", strings.Join(args[i:i+3], " "), args[i+j])
			}
			v[j] = n
		}
		m := mapping{inside: v[0], outside: v[1], count: v[2]}
		if m.count == 0 {
			return nil, fmt.Errorf("mapping %d %d %d: empty range", m.inside, m.outside, m.count)
		}
		if m.inside+m.count-1 > maxID || m.outside+m.count-1 > maxID {
			return nil, fmt.Errorf("mapping %d %d %d: ids overflow", m.inside, m.outside, m.count)
		}
		out = append(out, m)
	}
	return out, nil
}

// parseSubIDs reads the ranges /etc/subuid or /etc/subgid grants the user name (or numeric id, as
// shadow also accepts): lines "OWNER:START:COUNT"; blank lines, comments and malformed lines are
// skipped.
func parseSubIDs(r io.Reader, name string, id uint64) ([]subRange, error) {
	var out []subRange
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != name && f[0] != strconv.FormatUint(id, 10)) {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			continue
		}
		out = append(out, subRange{start: start, count: count})
	}
	return out, sc.Err()
}

// covered reports whether the ids [start, start+count) all lie in the union of ranges.
func covered(start, count uint64, ranges []subRange) bool {
	end := start + count
	for id := start; id < end; {
		next := id
		for _, r := range ranges {
			if r.start <= id && id < r.start+r.count {
				next = min(end, r.start+r.count)
				break
			}
		}
		if next == id {
			return false
		}
		id = next
	}
	return true
}

// verify checks every mapping as shadow's newuidmap/newgidmap do: its outside ids lie in the
// caller's subordinate ranges, or it maps exactly the caller's own id (own). fromSub says whether
// some mapping came from the subordinate ranges: newgidmap then leaves setgroups allowed, and
// denies it when the caller mapped only its own gid (setgroups would let the namespace's root
// drop that group, which could bypass negative group permissions).
func verify(ms []mapping, subs []subRange, own uint64) (fromSub bool, err error) {
	for _, m := range ms {
		switch {
		case covered(m.outside, m.count, subs):
			fromSub = true
		case m.count == 1 && m.outside == own:
		default:
			return false, fmt.Errorf("mapping %d %d %d: ids %d-%d are neither yours (%d) nor granted to you as subordinate ids",
				m.inside, m.outside, m.count, m.outside, m.outside+m.count-1, own)
		}
	}
	return fromSub, nil
}

// checkRoot says why it cannot work when the effective uid is not root: the setuid bit missing, or
// ignored because no_new_privs is set (Kubernetes: allowPrivilegeEscalation false).
func checkRoot(euid int) error {
	if euid != 0 {
		return fmt.Errorf("running as uid %d, not root: install me setuid root, in a container that allows privilege escalation (no no_new_privs; Kubernetes: allowPrivilegeEscalation not false)", euid)
	}
	return nil
}

// checkOwner is shadow's check that the caller may map the target process: the caller's real uid
// and gid are its passwd entry's, and the process (its /proc/PID directory) is owned by them.
func checkOwner(ruid, rgid, pwUID, pwGID, procUID, procGID uint64) error {
	if ruid != pwUID || rgid != pwGID || procUID != ruid || procGID != rgid {
		return fmt.Errorf("the target process is owned by a different user: uid %d (yours %d, passwd %d), gid %d (yours %d, passwd %d)",
			procUID, ruid, pwUID, procGID, rgid, pwGID)
	}
	return nil
}

// mapText is the mappings as the kernel takes them: one "INSIDE OUTSIDE COUNT" line each, in one write.
func mapText(ms []mapping) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%d %d %d\n", m.inside, m.outside, m.count)
	}
	return b.String()
}
