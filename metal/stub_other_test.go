//go:build !darwin || !cgo

package metal

import (
	"strings"
	"testing"
)

func TestNotAvailableOffMacOS(t *testing.T) {
	e, err := New()
	if e != nil || err == nil || !strings.HasPrefix(err.Error(), "Metal is not available: ") {
		t.Fatalf("New() = %v, %v; want no executor and a \"Metal is not available\" error", e, err)
	}
	ok, why := Available()
	if ok || why != err.Error() {
		t.Fatalf("Available() = %v, %q; want false, %q", ok, why, err.Error())
	}
	t.Log(why)
}
