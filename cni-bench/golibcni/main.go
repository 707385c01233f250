// golibcni runs one verb of a conflist through Go's libcni, the library containerd, CRI-O and
// podman call plugins with: the runtime of cni-bench's "Go libcni runtime" section, so that
// our chain and the reference's are driven exactly as those runtimes drive them.
//
// Usage: golibcni add|del CONFLIST NETNS CONTAINERID
// Environment: CNI_PATH (':'-separated plugin directories), CNI_CACHE_DIR, CAP_ARGS (a JSON
// object of capability arguments, e.g. {"portMappings":[...]}).
//
// Built by cni-bench with Debian's golang-go and golang-github-appc-cni-dev
// (GO111MODULE=off GOPATH=/usr/share/gocode), as cni-types' result recorder.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "golibcni:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 5 || (os.Args[1] != "add" && os.Args[1] != "del") {
		fmt.Fprintln(os.Stderr, "usage: golibcni add|del CONFLIST NETNS CONTAINERID")
		os.Exit(2)
	}
	list, err := libcni.ConfListFromFile(os.Args[2])
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(
		filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	rt := &libcni.RuntimeConf{ContainerID: os.Args[4], NetNS: os.Args[3], IfName: "eth0"}
	if caps := os.Getenv("CAP_ARGS"); caps != "" {
		if err := json.Unmarshal([]byte(caps), &rt.CapabilityArgs); err != nil {
			fail(err)
		}
	}
	ctx := context.Background()
	if os.Args[1] == "add" {
		if _, err := cni.AddNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
		return
	}
	if err := cni.DelNetworkList(ctx, list, rt); err != nil {
		fail(err)
	}
}
