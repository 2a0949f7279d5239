package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// The layering the package READMEs state, checked on the real import graph
// (go list), so a stray import fails here and not in a reviewer's head:
// the public packages import nothing under internal/ but internal/cpuclock
// (a leaf of the standard library's, which they time their cgo calls
// with), the stages upstream know nothing of the stages downstream, and
// any may read engine/registry, the one list of named parts, itself a leaf.
func TestPackageLayering(t *testing.T) {
	const mod = "github.com/edgemo/edgemo/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []struct{ pkg, imp string }{
		{"engine", "internal/"}, {"publish", "internal/"}, {"capture", "internal/"},
		{"facetrack", "internal/"}, {"window", "internal/"}, {"web", "internal/"},
		{"capture", "facetrack"}, {"capture", "engine"}, {"capture", "publish"}, {"capture", "window"},
		{"facetrack", "engine/videmo"}, {"facetrack", "window"}, {"facetrack", "publish"}, {"facetrack", "capture"},
		{"window", "engine"}, {"window", "publish"}, {"window", "capture"},
		{"engine", "publish"}, {"engine", "capture"},
		{"publish", "engine/videmo"}, {"publish", "engine/schedule"}, {"publish", "capture"},
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			imp = strings.TrimPrefix(imp, mod)
			checked++
			if under(pkg, "internal/cpuclock") || under(pkg, "engine/registry") { // the leaves every layer may import
				t.Errorf("%s imports %s: %s must import nothing of edgemo's (see its README)", pkg, imp, pkg)
			}
			for _, r := range forbidden {
				if under(pkg, r.pkg) && under(imp, r.imp) && imp != "internal/cpuclock" && imp != "engine/registry" {
					t.Errorf("%s imports %s: %s must not import %s (see its README)", pkg, imp, r.pkg, r.imp)
				}
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d edgemo imports seen: go list output looks wrong:\n%s", checked, out)
	}
}

// under: p is dir or a package below it ("internal/" matches all of internal).
func under(p, dir string) bool {
	if strings.HasSuffix(dir, "/") {
		return strings.HasPrefix(p, dir)
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}
