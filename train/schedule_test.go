package train

import (
	"math"
	"strings"
	"testing"
)

func TestScheduleMatchesHuggingFaceLambdas(t *testing.T) {
	// Expected values worked out by hand from transformers' lr_lambda
	// functions (optimization.py): warm-up step/max(1, warmup); linear
	// max(0, (total-step)/max(1, total-warmup)); cosine
	// max(0, 0.5*(1+cos(pi*num_cycles*2*progress))), with min_lr_rate
	// factor*(1-r)+r.
	cos := func(progress float64) float64 { return 0.5 * (1 + math.Cos(math.Pi*progress)) }
	cases := []struct {
		name string
		s    Schedule
		step int
		want float64
	}{
		{"constant warm-up starts at 0", Schedule{Kind: ScheduleConstant, WarmupSteps: 4}, 0, 0},
		{"constant half way through warm-up", Schedule{Kind: ScheduleConstant, WarmupSteps: 4}, 2, 0.5},
		{"constant after warm-up", Schedule{Kind: ScheduleConstant, WarmupSteps: 4}, 4, 1},
		{"constant without warm-up", Schedule{Kind: ScheduleConstant}, 0, 1},
		{"constant ignores the floor", Schedule{Kind: ScheduleConstant, MinLRRatio: 0.3}, 1000, 1},
		{"linear warm-up", Schedule{Kind: ScheduleLinear, WarmupSteps: 10, TotalSteps: 110}, 3, 0.3},
		{"linear peak at end of warm-up", Schedule{Kind: ScheduleLinear, WarmupSteps: 10, TotalSteps: 110}, 10, 1},
		{"linear half way down", Schedule{Kind: ScheduleLinear, WarmupSteps: 10, TotalSteps: 110}, 60, 0.5},
		{"linear last step", Schedule{Kind: ScheduleLinear, WarmupSteps: 10, TotalSteps: 110}, 109, 0.01},
		{"linear zero at total", Schedule{Kind: ScheduleLinear, WarmupSteps: 10, TotalSteps: 110}, 110, 0},
		{"linear clamps past total", Schedule{Kind: ScheduleLinear, WarmupSteps: 10, TotalSteps: 110}, 500, 0},
		{"linear without warm-up starts at 1", Schedule{Kind: ScheduleLinear, TotalSteps: 100}, 0, 1},
		{"linear with floor half way", Schedule{Kind: ScheduleLinear, WarmupSteps: 10, TotalSteps: 110, MinLRRatio: 0.1}, 60, 0.55},
		{"linear with floor past total", Schedule{Kind: ScheduleLinear, WarmupSteps: 10, TotalSteps: 110, MinLRRatio: 0.1}, 200, 0.1},
		{"linear warm-up ignores floor", Schedule{Kind: ScheduleLinear, WarmupSteps: 10, TotalSteps: 110, MinLRRatio: 0.1}, 0, 0},
		{"cosine peak", Schedule{Kind: ScheduleCosine, WarmupSteps: 10, TotalSteps: 110}, 10, 1},
		{"cosine quarter", Schedule{Kind: ScheduleCosine, WarmupSteps: 10, TotalSteps: 110}, 35, cos(0.25)},
		{"cosine half", Schedule{Kind: ScheduleCosine, WarmupSteps: 10, TotalSteps: 110}, 60, 0.5},
		{"cosine end", Schedule{Kind: ScheduleCosine, WarmupSteps: 10, TotalSteps: 110}, 110, 0},
		{"cosine past total rises again as in HF", Schedule{Kind: ScheduleCosine, WarmupSteps: 10, TotalSteps: 110}, 160, 0.5},
		{"cosine with floor at end", Schedule{Kind: ScheduleCosine, WarmupSteps: 10, TotalSteps: 110, MinLRRatio: 0.1}, 110, 0.1},
		{"cosine with floor quarter", Schedule{Kind: ScheduleCosine, WarmupSteps: 10, TotalSteps: 110, MinLRRatio: 0.1}, 35, cos(0.25)*0.9 + 0.1},
		{"cosine one full cycle", Schedule{Kind: ScheduleCosine, TotalSteps: 100, NumCycles: 1}, 50, 0},
		{"warm-up equal to total", Schedule{Kind: ScheduleLinear, WarmupSteps: 5, TotalSteps: 5}, 5, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.BaseLR = 2e-4
			if err := tc.s.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := tc.s.Lambda(tc.step); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("Lambda(%d) = %.15g, want %.15g", tc.step, got, tc.want)
			}
			if got := tc.s.LR(tc.step); math.Abs(got-2e-4*tc.want) > 1e-18 {
				t.Errorf("LR(%d) = %g, want %g", tc.step, got, 2e-4*tc.want)
			}
		})
	}
}

func TestScheduleValidateRejects(t *testing.T) {
	cases := []struct {
		name string
		s    Schedule
		want string
	}{
		{"unknown kind", Schedule{Kind: "exponential", BaseLR: 1}, "unknown kind"},
		{"decay without total", Schedule{Kind: ScheduleCosine, BaseLR: 1}, "total number of steps"},
		{"negative warm-up", Schedule{Kind: ScheduleConstant, BaseLR: 1, WarmupSteps: -1}, "warmup"},
		{"floor above one", Schedule{Kind: ScheduleLinear, BaseLR: 1, TotalSteps: 3, MinLRRatio: 2}, "min_lr_ratio"},
		{"NaN rate", Schedule{Kind: ScheduleConstant, BaseLR: math.NaN()}, "base learning rate"},
	}
	for _, tc := range cases {
		if err := tc.s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
