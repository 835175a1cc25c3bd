package metal

import (
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
	"github.com/mlx-moe/mlx-moe/sample"
)

// loadSlotExperts loads dir with its experts paged (exact policy, capacity
// slots a layer, memory from the executor); the model's pager adapter is
// SlotExperts. It also returns the number of MoE layers.
func loadSlotExperts(t *testing.T, dir string, capacity int, e *Executor) (*model.Model, int) {
	t.Helper()
	m := loadPaged(t, dir, capacity, e.SlotAllocator())
	for _, src := range m.ExpertSources() {
		t.Fatalf("layer %d has no pager attached", src.Layer)
	}
	layers := 0
	for _, l := range m.Layers {
		if moe, ok := l.FFN.(*model.MoE); ok {
			if _, ok := moe.Experts.(SlotExperts); !ok {
				t.Fatalf("the pager adapter of layer %d is not SlotExperts", moe.Layer)
			}
			layers++
		}
	}
	return m, layers
}

// TestMoEEventFormOnHarness decodes with the experts behind SlotExperts, so
// each MoE layer of a decode step is a handoff inside the command buffer
// (the harness runs the queued work at commit and the handoff when it
// reaches the wait), at a capacity of top-k slots so that every step
// evicts. The logits must match the CPU executor with resident experts;
// every decode MoE must have been a handoff; and a decode step must commit
// once, plus once per op that ran on the host.
func TestMoEEventFormOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	for _, name := range slotModels(t, "qwen3_moe-4bit", "qwen3_next-4bit") {
		if gptOSSFixture(name) {
			continue // no event form for clamped experts
		}
		t.Run(name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+name)
			want, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			dev := newHarnessDevice(t)
			// Work runs at commit, as on a GPU: a host read of the router's
			// ids at encode time would see the previous step's.
			dev.deferAll = true
			e := newExecutor(dev)
			// Every decode MoE in the event form, misses included (as after
			// a wrong prediction of TestEventFormOnlyAfterAllHits's rule).
			e.eventAlways = true
			got, layers := loadSlotExperts(t, dir, want.Config.NumExpertsPerTok, e)

			ref := cpu.New()
			prompt := fixture.LoadReference(t, dir).Prompts[0].IDs
			const steps = 3
			rc, rg := model.NewRunner(want, ref), model.NewRunner(got, e)
			cc, cg := want.NewCache(ref, len(prompt)+steps), got.NewCache(e, len(prompt)+steps)
			wl, gl := forwardBoth(t, rc, rg, cc, cg, prompt, true)
			vocab := want.Config.VocabSize
			prefill := maxRelDiff(gl, wl)
			if dev.handoffs != 0 {
				t.Errorf("prefill ran %d handoffs; a batch should commit at each MoE instead", dev.handoffs)
			}
			next := sample.Argmax(wl[len(wl)-vocab:])
			var decode float64
			for step := range steps {
				hostBefore, commitsBefore := sumOps(e.HostOps()), dev.commits
				wl, gl := forwardBoth(t, rc, rg, cc, cg, []int32{next}, false)
				decode = max(decode, maxRelDiff(gl, wl))
				host, commits := sumOps(e.HostOps())-hostBefore, dev.commits-commitsBefore
				if commits > 1+host {
					t.Errorf("decode step %d: %d commits with %d host ops (want at most 1 + host ops)", step, commits, host)
				}
				next = sample.Argmax(wl)
			}
			t.Logf("prefill %.2g, decode %.2g; %s; host ops %v", prefill, decode, dev.summary(), e.HostOps())
			if prefill > logitTol || decode > logitTol {
				t.Errorf("logits differ from the CPU executor: prefill %.3g, decode %.3g (tolerance %g)", prefill, decode, logitTol)
			}
			if dev.handoffs != steps*layers {
				t.Errorf("%d handoffs, want one per MoE layer per decode step (%d)", dev.handoffs, steps*layers)
			}
			slotKernels := 0
			for name, n := range dev.dispatches {
				if strings.HasPrefix(name, "gather_qmv_swiglu_slots_") || strings.HasPrefix(name, "gather_qmv_slots_") {
					slotKernels += n
				}
			}
			if slotKernels != 2*steps*layers {
				t.Errorf("%d dispatches of the slot kernels, want 2 per MoE layer per decode step (%d)", slotKernels, 2*steps*layers)
			}
		})
	}
}

func sumOps(ops map[string]int) int {
	n := 0
	for _, v := range ops {
		n += v
	}
	return n
}

// TestEventFormOnlyAfterAllHits checks the rule that keeps disk reads out of
// GPU waits: a decode MoE layer uses the event form (one command buffer)
// only when its previous decode resolve read nothing from disk; otherwise
// it commits at the layer and resolves with the GPU idle. With every
// expert fitting in the slots the layers warm up until a step is one
// command buffer; with top-k slots, where resolves keep reading, the
// layers split. The logits match the CPU executor either way.
func TestEventFormOnlyAfterAllHits(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	const name = "qwen3_moe-4bit"
	dir := fixture.Dir(t, "fixtures/"+name)
	want, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	for _, capacity := range []int{want.Config.NumExperts, want.Config.NumExpertsPerTok} {
		dev := newHarnessDevice(t)
		dev.deferAll = true
		e := newExecutor(dev)
		got, pager := loadPagedWith(t, dir, capacity, e.SlotAllocator())
		layers := len(pager.Stats().Layers)
		ref := cpu.New()
		prompt := fixture.LoadReference(t, dir).Prompts[0].IDs
		const steps = 8
		rc, rg := model.NewRunner(want, ref), model.NewRunner(got, e)
		cc, cg := want.NewCache(ref, len(prompt)+steps), got.NewCache(e, len(prompt)+steps)
		wl, _ := forwardBoth(t, rc, rg, cc, cg, prompt, false)
		next := sample.Argmax(wl)
		missedLast := layers // before any decode step the rule splits every layer
		oneBuffer, worst := 0, 0.0
		for step := range steps {
			before, commitsBefore, eventsBefore, hostBefore := pager.Stats(), dev.commits, e.eventMoEs, sumOps(e.HostOps())
			wl, gl := forwardBoth(t, rc, rg, cc, cg, []int32{next}, false)
			worst = max(worst, maxRelDiff(gl, wl))
			after := pager.Stats()
			missed := 0
			for i := range after.Layers {
				if after.Layers[i].Misses > before.Layers[i].Misses {
					missed++
				}
			}
			events, commits, host := e.eventMoEs-eventsBefore, dev.commits-commitsBefore, sumOps(e.HostOps())-hostBefore
			if events != layers-missedLast {
				t.Errorf("capacity %d, step %d: %d layers in the event form, want the %d whose last resolve read nothing", capacity, step, events, layers-missedLast)
			}
			if events == layers {
				oneBuffer++
				if commits > 1+host {
					t.Errorf("capacity %d, step %d: every layer in the event form but %d commits (%d host ops)", capacity, step, commits, host)
				}
			} else if commits < 1+layers-events {
				t.Errorf("capacity %d, step %d: %d layers split but only %d commits", capacity, step, layers-events, commits)
			}
			t.Logf("capacity %d, step %d: %d of %d layers read from disk; %d in the event form; %d commits", capacity, step, missed, layers, events, commits)
			missedLast = missed
			next = sample.Argmax(wl)
		}
		if worst > logitTol {
			t.Errorf("capacity %d: logits differ from the CPU executor by %.3g (tolerance %g)", capacity, worst, logitTol)
		}
		if capacity == want.Config.NumExperts && oneBuffer == 0 {
			t.Errorf("with every expert fitting, no decode step became one command buffer in %d steps", steps)
		}
	}
}

// forwardBoth runs the same tokens through the reference runner and the
// runner under test and returns both logits.
func forwardBoth(t *testing.T, rc, rg *model.Runner, cc, cg *model.Cache, ids []int32, all bool) (want, got []float32) {
	t.Helper()
	want, err := rc.Forward(cc, ids, all)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = rg.Forward(cg, ids, all); err != nil {
		t.Fatal(err)
	}
	return want, got
}
