package namedns

import (
	"bufio"
	"io"
	"os"
	"strings"
)

// ClusterDomainFrom finds the cluster's DNS domain in a resolv.conf the kubelet wrote for a pod
// (search <namespace>.svc.<domain> svc.<domain> <domain> ...): the domain of its first
// "svc.<domain>" search entry. ok is false when there is none.
func ClusterDomainFrom(resolvConf io.Reader) (domain string, ok bool) {
	sc := bufio.NewScanner(resolvConf)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "search" {
			continue
		}
		for _, f := range fields[1:] {
			f = strings.Trim(strings.ToLower(f), ".")
			if d, found := strings.CutPrefix(f, "svc."); found && d != "" {
				return d, true
			}
		}
	}
	return "", false
}

// DetectClusterDomain is the cluster domain of the pod this process runs in (from
// /etc/resolv.conf), else DefaultClusterDomain.
func DetectClusterDomain() string {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return DefaultClusterDomain
	}
	defer f.Close()
	if d, ok := ClusterDomainFrom(f); ok {
		return d
	}
	return DefaultClusterDomain
}
