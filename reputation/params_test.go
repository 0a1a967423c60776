package reputation

import (
	"reflect"
	"testing"
)

// TestParamsDigestBindsEveryField: changing any one parameter changes
// ParamsDigest (a field added to Params without joining it fails here).
func TestParamsDigestBindsEveryField(t *testing.T) {
	base := DefaultParams()
	d0 := ParamsDigest(base)
	if d0 != ParamsDigest(DefaultParams()) {
		t.Fatal("digest is not deterministic")
	}
	v := reflect.ValueOf(&base).Elem()
	seen := map[[32]byte]string{d0: "defaults"}
	for i := range v.NumField() {
		f := v.Field(i)
		targets := []reflect.Value{f}
		if f.Kind() == reflect.Array {
			targets = targets[:0]
			for j := range f.Len() {
				targets = append(targets, f.Index(j))
			}
		}
		for j, x := range targets {
			p := DefaultParams()
			pv := reflect.ValueOf(&p).Elem().Field(i)
			if pv.Kind() == reflect.Array {
				pv = pv.Index(j)
			}
			pv.SetUint(x.Uint() + 1)
			d := ParamsDigest(p)
			name := v.Type().Field(i).Name
			if prev, ok := seen[d]; ok {
				t.Errorf("changing %s[%d] gives the digest of %s", name, j, prev)
			}
			seen[d] = name
		}
	}
}

func TestFeedParamsDigest(t *testing.T) {
	p := DefaultParams()
	a, b := [32]byte{1}, [32]byte{2}
	d := FeedParamsDigest([][32]byte{a}, p)
	other := p
	other.TrustedScoreBP++
	for name, got := range map[string][32]byte{
		"another profile":        FeedParamsDigest([][32]byte{b}, p),
		"one more profile":       FeedParamsDigest([][32]byte{a, b}, p),
		"no profile":             FeedParamsDigest(nil, p),
		"other reputation rules": FeedParamsDigest([][32]byte{a}, other),
	} {
		if got == d {
			t.Errorf("%s: same feed params digest", name)
		}
	}
	if FeedParamsDigest([][32]byte{a}, DefaultParams()) != d {
		t.Error("not deterministic")
	}
}
