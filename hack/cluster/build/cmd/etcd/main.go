// Command etcd is etcd's server, built in the cluster harness's module so that its version
// matches the one k8s.io/kubernetes pins.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
