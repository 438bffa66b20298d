// Command push copies image tarballs written by mkimage (docker-archive, one image each) to a
// registry, such as the local cluster's in-cluster registry through its node relay
// (127.0.0.1:5100, plain HTTP: go-containerregistry speaks HTTP to loopback registries).
//
//	push TARBALL=REF ...
//
// It prints REF@DIGEST for each image pushed. Blobs the registry already has are not sent again.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "push:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: push TARBALL=REF ...")
	}
	for _, a := range args {
		path, ref, ok := strings.Cut(a, "=")
		if !ok || path == "" || ref == "" {
			return fmt.Errorf("bad argument %q: want TARBALL=REF", a)
		}
		r, err := name.ParseReference(ref, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := remote.Write(r, img); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Printf("%s@%s\n", r.Context().Name(), d)
	}
	return nil
}
