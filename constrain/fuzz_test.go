package constrain

import "testing"

// FuzzCompile: any schema text either compiles or is refused with an
// error, and a compiled grammar takes any bytes and masks without
// panicking.
func FuzzCompile(f *testing.F) {
	for _, tc := range loadCorpus(f) {
		f.Add(string(tc.Schema), tc.Valid[0])
	}
	f.Add(`{"$ref":"#"}`, `{}`)
	f.Add(`{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`, `1`)
	f.Add(`{"type":["string","null"],"minLength":3}`, `"abc"`)
	f.Add(`{"enum":[]}`, `x`)
	f.Add(`[]`, ``)
	v := byteVocab()
	f.Fuzz(func(t *testing.T, schema, doc string) {
		for _, compile := range []func([]byte, Limits) (*Grammar, error){CompileSchema,
			func(b []byte, l Limits) (*Grammar, error) { return XMLCall("f", b, l) },
			func(b []byte, l Limits) (*Grammar, error) { return GLMCall("f", b, l) }} {
			g, err := compile([]byte(schema), Limits{MaxString: 8, MaxItems: 3, MaxDepth: 4})
			if err != nil {
				continue
			}
			c := New(g, v)
			c.Budget = 64
			logits := make([]float32, v.Size())
			var ids []int
			for i := 0; i < len(doc) && i < 64; i++ {
				c.Mask(ids, logits)
				ids = append(ids, int(doc[i]))
			}
			c.Mask(ids, logits)
		}
	})
}
