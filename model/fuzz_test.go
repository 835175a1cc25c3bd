package model

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzParseHeader: any bytes either parse into tensors that lie inside the
// file without overlapping, or give an error; never a panic.
func FuzzParseHeader(f *testing.F) {
	header := func(h string, data int) []byte {
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, uint64(len(h)))
		b.WriteString(h)
		b.Write(make([]byte, data))
		return b.Bytes()
	}
	f.Add(header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8))
	f.Add(header(`{"__metadata__":{"format":"mlx"},"w":{"dtype":"U32","shape":[2,2],"data_offsets":[0,16]},"s":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]}}`, 20))
	f.Add(header(`{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}`, 4))
	f.Add(header(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}`, 8))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, file []byte) {
		infos, err := ParseHeader(bytes.NewReader(file), int64(len(file)), "fuzz.safetensors")
		if err != nil {
			return
		}
		var end int64
		for _, ti := range infos {
			if ti.Offset < end || ti.Offset+ti.Length > int64(len(file)) {
				t.Fatalf("tensor %s at [%d,%d) overlaps or lies outside a %d-byte file", ti.Name, ti.Offset, ti.Offset+ti.Length, len(file))
			}
			if int64(ti.Elements()*ti.DType.Size()) != ti.Length {
				t.Fatalf("tensor %s: %d bytes for shape %v", ti.Name, ti.Length, ti.Shape)
			}
			end = ti.Offset + ti.Length
		}
	})
}

// FuzzParseConfig: any bytes parse or give an error; a parsed config has
// the invariants the loaders rely on.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"model_type":"qwen3_moe","vocab_size":512,"hidden_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"num_experts":16,"num_experts_per_tok":4,"quantization":{"group_size":64,"bits":4,"model.layers.0.mlp.gate":{"group_size":64,"bits":8}}}`))
	f.Add([]byte(`{"model_type":"qwen3_5_moe","text_config":{"model_type":"qwen3_5_moe_text","vocab_size":8,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":1}}`))
	f.Add([]byte(`{"model_type":"deepseek_v3","rope_scaling":{"type":"yarn","factor":40},"vocab_size":8,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":0}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if c.NumKVHeads <= 0 || c.NumHeads%c.NumKVHeads != 0 || c.HiddenSize <= 0 || c.NumLayers <= 0 {
			t.Fatalf("accepted inconsistent config: heads %d kv %d hidden %d layers %d", c.NumHeads, c.NumKVHeads, c.HiddenSize, c.NumLayers)
		}
	})
}
