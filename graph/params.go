package graph

import (
	"fmt"
	"slices"
	"sort"
	"sync/atomic"

	"gorgonia.org/tensor"
)

// Role is what a parameter is to the layer that registered it. The layer
// knows (a LayerNorm registers a gain and a shift, a Linear a matrix and a
// bias), so it sets the role, and everything that treats parameters
// differently (initialisation, weight decay) asks the role instead of
// matching names.
type Role uint8

const (
	// RoleWeight is a weight matrix or kernel: normal initialisation,
	// weight decay. It is the zero value.
	RoleWeight Role = iota
	// RoleBias is an additive bias: zero initialisation, no weight decay.
	RoleBias
	// RoleNormGain is a LayerNorm's weight: initialised to one, no decay.
	RoleNormGain
	// RoleNormBias is a LayerNorm's bias: zero initialisation, no decay.
	RoleNormBias
	// RoleEmbedding is a learned embedding (lookup tables, CLIP's class,
	// patch and position embeddings, GIT's temporal embeddings): normal
	// initialisation, no weight decay.
	RoleEmbedding
)

var roleNames = [...]string{"weight", "bias", "norm gain", "norm bias", "embedding"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Decayed reports whether weight decay applies to parameters of this role
// under the usual convention (the one HF training scripts follow): decay
// weight matrices; not biases, LayerNorm parameters or embeddings.
func (r Role) Decayed() bool { return r == RoleWeight }

// Init is how a fresh parameter is initialised.
type Init uint8

const (
	InitNormal Init = iota // normal(0, initializer_range)
	InitZeros
	InitOnes
)

// Init returns the initialisation of this role.
func (r Role) Init() Init {
	switch r {
	case RoleBias, RoleNormBias:
		return InitZeros
	case RoleNormGain:
		return InitOnes
	}
	return InitNormal
}

// Param is one named weight tensor, owned outside any graph so that every
// graph built over it (inference, training, decode step) reads and updates
// the same memory, together with its gradient and what its layer says about
// it. It is the one parameter type of the project: layers register it,
// checkpoints load and save it by Name, initialisation and the optimiser
// read its Role, Group and Frozen.
type Param struct {
	// Name is the HuggingFace state-dict name (checkpoint I/O).
	Name string
	// Value holds the weights in the checkpoint's shape.
	Value *tensor.Dense
	// W is Value's memory as float32s (the same memory, no copy). A Param
	// made outside a Params registry (optimiser tests) may have W only.
	W []float32
	// G is the gradient, len(W), bound by the training step to a graph's
	// gradient buffer (no copy) or to an accumulation buffer.
	G []float32

	// Role is set by the registering layer; it decides initialisation and
	// the default weight decay.
	Role Role
	// ZeroRows lists rows of a (rows, cols) parameter that initialisation
	// leaves at zero (an embedding's padding_idx).
	ZeroRows []int
	// Group names the learning-rate group ("vision", "text"); set by the
	// model when it registers the parameter (Params.WithGroup).
	Group string
	// Frozen parameters are not optimised (set by the training setup).
	Frozen bool

	// amx is a bf16 weight packed for the AMX kernel (Param.amxWeights,
	// bf16amx.go), made on first use, dropped when the values change.
	amx atomic.Pointer[[]uint16]
	// packedShape is the weight's shape once PackAMX has dropped its
	// checkpoint-layout bits (Value nil, amx the only copy); nil otherwise.
	packedShape []int
}

// Shape returns the parameter's checkpoint shape.
func (p *Param) Shape() []int {
	if p.packedShape != nil {
		return slices.Clone(p.packedShape)
	}
	return p.Value.Shape().Clone()
}

// F32 returns the parameter's values for a float32 model.
func (p *Param) F32() []float32 {
	if p.Value == nil {
		return p.W
	}
	return p.Value.Data().([]float32)
}

// Params is a model's parameters keyed by state-dict name: a checkpoint is a
// map from these names to tensors, so loading, saving and training speak the
// same names.
type Params struct {
	Dtype  tensor.Dtype
	byName map[string]*Param
	group  string
}

// NewParams returns an empty registry whose tensors have the given dtype.
func NewParams(dt tensor.Dtype) *Params {
	return &Params{Dtype: dt, byName: map[string]*Param{}}
}

// WithGroup returns a view of the registry that registers parameters (into
// the same registry) with Group set to group.
func (ps *Params) WithGroup(group string) *Params {
	return &Params{Dtype: ps.Dtype, byName: ps.byName, group: group}
}

// New registers a zero-filled weight (RoleWeight). Registering a name twice
// is a programming error in a model definition and panics.
func (ps *Params) New(name string, shape ...int) *Param {
	return ps.NewRole(name, RoleWeight, shape...)
}

// NewRole registers a zero-filled parameter with the given role.
func (ps *Params) NewRole(name string, role Role, shape ...int) *Param {
	if _, dup := ps.byName[name]; dup {
		panic(fmt.Sprintf("graph: parameter %q registered twice", name))
	}
	v := tensor.New(tensor.Of(ps.Dtype), tensor.WithShape(shape...))
	p := &Param{Name: name, Value: v, Role: role, Group: ps.group}
	if w, ok := v.Data().([]float32); ok {
		p.W = w
	}
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
		n += tensor.Shape(p.Shape()).TotalSize()
	}
	return n
}
