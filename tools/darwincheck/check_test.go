package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const fixture = "testdata/mod"

// requireDarwinkit skips when darwinkit v0.5.0 is not in the module cache:
// the test must not download it. .ci/msl-deps fetches it.
func requireDarwinkit(t *testing.T) {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/progrium/darwinkit")
	cmd.Dir = fixture
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("darwinkit v0.5.0 is not in the module cache (run .ci/msl-deps, or `go mod download` in %s): %s", fixture, strings.TrimSpace(string(out)))
	}
	t.Setenv("GOPROXY", "off")
}

// plants returns the lines of the fixture marked "// PLANT: kind".
func plants(t *testing.T, file string) map[int]string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[int]string)
	for i, line := range strings.Split(string(src), "\n") {
		if _, kind, ok := strings.Cut(line, "// PLANT: "); ok {
			m[i+1] = strings.TrimSpace(kind)
		}
	}
	return m
}

func TestPlantedErrorsAreReported(t *testing.T) {
	requireDarwinkit(t)
	findings, err := Check(fixture, false, "./bad")
	if err != nil {
		t.Fatal(err)
	}
	badFile, _ := filepath.Abs(filepath.Join(fixture, "bad", "bad.go"))
	want := plants(t, badFile)
	if len(want) != 3 {
		t.Fatalf("fixture has %d plants, want 3", len(want))
	}
	got := make(map[int]string)
	for _, f := range findings {
		t.Log(f)
		if f.Pos.Filename != badFile {
			t.Errorf("finding outside the fixture package: %v", f)
			continue
		}
		got[f.Pos.Line] = f.Kind
	}
	for line, kind := range want {
		if got[line] != kind {
			t.Errorf("bad.go:%d: want a %q finding, got %q", line, kind, got[line])
		}
	}
	for line, kind := range got {
		if want[line] == "" {
			t.Errorf("bad.go:%d: unexpected %q finding", line, kind)
		}
	}
}

func TestCleanPackageHasNoFindings(t *testing.T) {
	requireDarwinkit(t)
	findings, err := Check(fixture, true, "./good")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("unexpected finding: %v", f)
	}
}

// The panicking methods are derived from darwinkit's source; check that the
// derivation finds the ones known to panic and spares ones known to work.
func TestDerivedPanickingMethods(t *testing.T) {
	requireDarwinkit(t)
	r, err := check(fixture, false, []string{"./good"})
	if err != nil {
		t.Fatal(err)
	}
	names := make(map[string]bool)
	for fn := range r.panics {
		names[fn.FullName()] = true
	}
	t.Logf("%d darwinkit functions and interface methods derived as panicking", len(names))
	const m = "(github.com/progrium/darwinkit/macos/metal."
	for _, name := range []string{
		m + "ComputeCommandEncoderObject).SetComputePipelineState",
		m + "ComputeCommandEncoderObject).SetBufferOffsetAtIndex_",
		m + "DeviceObject).NewComputePipelineStateWithFunctionError",
		m + "PComputeCommandEncoder).SetComputePipelineState",
	} {
		if !names[name] {
			t.Errorf("%s not derived as panicking", name)
		}
	}
	for _, name := range []string{
		m + "ComputeCommandEncoderObject).SetBytesLengthAtIndex",
		m + "ComputeCommandEncoderObject).DispatchThreadgroupsThreadsPerThreadgroup",
		m + "DeviceObject).NewBufferWithLengthOptions",
	} {
		if names[name] {
			t.Errorf("%s derived as panicking; it takes no protocol object", name)
		}
	}
}

// Loading errors (a pattern that matches nothing loadable) are errors, not
// findings.
func TestLoadErrorIsAnError(t *testing.T) {
	requireDarwinkit(t)
	if _, err := Check(fixture, false, "./nosuchpackage"); err == nil {
		t.Fatal("Check of a missing package returned no error")
	}
}

// With -tests, planted problems in in-package and external test files are
// reported (once each, though the package is loaded twice); without, they
// are not.
func TestPlantedErrorsInTests(t *testing.T) {
	requireDarwinkit(t)
	dir, _ := filepath.Abs(filepath.Join(fixture, "withtests"))
	want := make(map[string]string) // file:line -> kind
	for _, name := range []string{"withtests_test.go", "external_test.go"} {
		for line, kind := range plants(t, filepath.Join(dir, name)) {
			want[fmt.Sprintf("%s:%d", name, line)] = kind
		}
	}
	if len(want) != 3 {
		t.Fatalf("fixture has %d plants in tests, want 3", len(want))
	}
	findings, err := Check(fixture, true, "./withtests")
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string)
	for _, f := range findings {
		t.Log(f)
		key := fmt.Sprintf("%s:%d", filepath.Base(f.Pos.Filename), f.Pos.Line)
		if _, dup := got[key]; dup {
			t.Errorf("%s reported twice", key)
		}
		got[key] = f.Kind
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("findings %v, want %v", got, want)
	}
	findings, err = Check(fixture, false, "./withtests")
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 0 {
		t.Errorf("without tests: %v, want none", findings)
	}
}
