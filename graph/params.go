package graph

import (
	"fmt"
	"sort"

	"gorgonia.org/tensor"
)

// Param is one named weight tensor, owned outside any graph so that every
// graph built over it (inference, training, decode step) reads and updates
// the same memory. Name is the HuggingFace state-dict name; Shape is the
// checkpoint's shape.
type Param struct {
	Name  string
	Value *tensor.Dense
}

// Shape returns the parameter's checkpoint shape.
func (p *Param) Shape() []int { return p.Value.Shape().Clone() }

// F32 returns the parameter's values for a float32 model.
func (p *Param) F32() []float32 { return p.Value.Data().([]float32) }

// Params is a model's parameters keyed by state-dict name: a checkpoint is a
// map from these names to tensors, so loading, saving and training speak the
// same names.
type Params struct {
	Dtype  tensor.Dtype
	byName map[string]*Param
}

// NewParams returns an empty registry whose tensors have the given dtype.
func NewParams(dt tensor.Dtype) *Params {
	return &Params{Dtype: dt, byName: map[string]*Param{}}
}

// New registers a zero-filled parameter. Registering a name twice is a
// programming error in a model definition and panics.
func (ps *Params) New(name string, shape ...int) *Param {
	if _, dup := ps.byName[name]; dup {
		panic(fmt.Sprintf("graph: parameter %q registered twice", name))
	}
	p := &Param{Name: name, Value: tensor.New(tensor.Of(ps.Dtype), tensor.WithShape(shape...))}
	ps.byName[name] = p
	return p
}

// Get returns the parameter called name, or nil.
func (ps *Params) Get(name string) *Param { return ps.byName[name] }

// Names returns every parameter name, sorted.
func (ps *Params) Names() []string {
	names := make([]string, 0, len(ps.byName))
	for n := range ps.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// All returns every parameter, sorted by name.
func (ps *Params) All() []*Param {
	names := ps.Names()
	out := make([]*Param, len(names))
	for i, n := range names {
		out[i] = ps.byName[n]
	}
	return out
}

// Count returns the total number of scalar parameters.
func (ps *Params) Count() int {
	n := 0
	for _, p := range ps.byName {
		n += p.Value.Shape().TotalSize()
	}
	return n
}
