package train

import (
	"fmt"
	"math"
)

// Schedule kinds.
const (
	ScheduleConstant = "constant" // warm-up, then the base rate
	ScheduleLinear   = "linear"   // warm-up, then linear decay to MinLRRatio at TotalSteps
	ScheduleCosine   = "cosine"   // warm-up, then half a cosine down to MinLRRatio at TotalSteps
)

// Schedule is a learning-rate schedule: linear warm-up over WarmupSteps, then
// constant, linear or cosine decay. It matches HuggingFace transformers'
// get_constant_schedule_with_warmup, get_linear_schedule_with_warmup and
// get_cosine_schedule_with_warmup (num_cycles 0.5) when MinLRRatio is 0, and
// get_cosine_with_min_lr_schedule_with_warmup (min_lr_rate) otherwise; for
// linear decay the floor is applied the same way:
// factor*(1-MinLRRatio) + MinLRRatio.
//
// Like torch's LambdaLR, step is the number of optimiser steps already taken,
// so the first update (step 0) uses Lambda(0), which is 0 when there is a
// warm-up.
type Schedule struct {
	Kind        string  // ScheduleConstant, ScheduleLinear or ScheduleCosine
	BaseLR      float64 // the peak learning rate
	WarmupSteps int     // steps of linear warm-up from 0
	TotalSteps  int     // the step at which decay reaches the floor (linear, cosine)
	MinLRRatio  float64 // floor as a fraction of BaseLR (linear, cosine), in [0, 1]
	NumCycles   float64 // cosine cycles; 0 means HF's default 0.5 (one half-cosine)
}

// Validate checks the schedule's fields.
func (s Schedule) Validate() error {
	switch s.Kind {
	case ScheduleConstant, ScheduleLinear, ScheduleCosine:
	default:
		return fmt.Errorf("schedule: unknown kind %q (want %s, %s or %s)", s.Kind, ScheduleConstant, ScheduleLinear, ScheduleCosine)
	}
	switch {
	case !(s.BaseLR >= 0) || math.IsInf(s.BaseLR, 0):
		return fmt.Errorf("schedule: base learning rate must be finite and >= 0, got %v", s.BaseLR)
	case s.WarmupSteps < 0:
		return fmt.Errorf("schedule: warmup steps must be >= 0, got %d", s.WarmupSteps)
	case s.Kind != ScheduleConstant && s.TotalSteps <= 0:
		return fmt.Errorf("schedule: %s decay needs the total number of steps, got %d", s.Kind, s.TotalSteps)
	case !(s.MinLRRatio >= 0 && s.MinLRRatio <= 1):
		return fmt.Errorf("schedule: min_lr_ratio must be in [0, 1], got %v", s.MinLRRatio)
	case !(s.NumCycles >= 0) || math.IsInf(s.NumCycles, 0):
		return fmt.Errorf("schedule: num_cycles must be >= 0, got %v", s.NumCycles)
	}
	return nil
}

// Lambda is the multiplier of BaseLR at step (HF's lr_lambda(current_step)).
func (s Schedule) Lambda(step int) float64 {
	if step < s.WarmupSteps {
		return float64(step) / float64(max(1, s.WarmupSteps))
	}
	var f float64
	switch s.Kind {
	case ScheduleLinear:
		f = max(0.0, float64(s.TotalSteps-step)/float64(max(1, s.TotalSteps-s.WarmupSteps)))
	case ScheduleCosine:
		cycles := s.NumCycles
		if cycles == 0 {
			cycles = 0.5
		}
		progress := float64(step-s.WarmupSteps) / float64(max(1, s.TotalSteps-s.WarmupSteps))
		f = 0.5 * (1.0 + math.Cos(math.Pi*cycles*2.0*progress))
	default:
		return 1
	}
	if s.MinLRRatio != 0 {
		f = f*(1-s.MinLRRatio) + s.MinLRRatio
	}
	return max(0, f)
}

// LR is the learning rate at step: BaseLR * Lambda(step), as LambdaLR
// computes it.
func (s Schedule) LR(step int) float64 { return s.BaseLR * s.Lambda(step) }
