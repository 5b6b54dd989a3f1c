package errcheck

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Kinds of finding (doc.go has the rule).
const (
	KindBlank     = "blank"
	KindCall      = "call"
	KindDefer     = "defer"
	KindDirective = "directive"
)

// Finding is one dropped error.
type Finding struct {
	Pos    token.Position
	File   string // relative to the directory Check ran in, slash separated
	Func   string // enclosing declared function: "f", "(*T).m", "T.m"; "" at package level
	Callee string // "os.Remove", "(*os.File).Close", or the expression dropped
	Kind   string
	Note   string
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s:%d: %s: %s drops the error of %s", f.File, f.Pos.Line, f.Kind, funcName(f.Func), f.Callee)
	if f.Note != "" {
		s += " (" + f.Note + ")"
	}
	return s
}

func funcName(fn string) string {
	if fn == "" {
		return "package scope"
	}
	return fn
}

// Directive marks a deliberate ignore (doc.go).
const Directive = "//walfs:ignore-error"

// Check loads the packages matching patterns from dir and returns every
// finding in their non-test files, sorted by position.
func Check(dir string, patterns ...string) ([]Finding, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
			packages.NeedTypes | packages.NeedTypesInfo,
		Dir: dir,
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", strings.Join(patterns, " "), err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			return nil, fmt.Errorf("load %s: %v", p.PkgPath, p.Errors[0])
		}
		for _, f := range p.Syntax {
			c := &checker{fset: p.Fset, info: p.TypesInfo, root: abs}
			out = append(out, c.file(f)...)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Offset < b.Offset
	})
	return out, nil
}

type checker struct {
	fset *token.FileSet
	info *types.Info
	root string

	file_    string
	fn       string
	body     *ast.BlockStmt // of the enclosing declared function
	findings []Finding

	src     []byte // of srcName, read for directives
	srcName string
}

var errorType = types.Universe.Lookup("error").Type().Underlying().(*types.Interface)

func isError(t types.Type) bool {
	if t == nil {
		return false
	}
	if _, ok := t.(*types.Tuple); ok {
		return false
	}
	return types.Implements(t, errorType)
}

func (c *checker) file(f *ast.File) []Finding {
	name := c.fset.File(f.Pos()).Name()
	rel, err := filepath.Rel(c.root, name)
	if err != nil {
		rel = name
	}
	c.file_ = filepath.ToSlash(rel)
	for _, d := range f.Decls {
		c.fn, c.body = "", nil
		if fd, ok := d.(*ast.FuncDecl); ok {
			c.fn, c.body = declName(fd), fd.Body
		}
		ast.Inspect(d, c.visit)
	}
	return c.applyDirectives(f)
}

func declName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	star := ""
	if s, ok := t.(*ast.StarExpr); ok {
		star, t = "*", s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if star != "" {
		return fmt.Sprintf("(*%s).%s", types.ExprString(t), fd.Name.Name)
	}
	return types.ExprString(t) + "." + fd.Name.Name
}

func (c *checker) add(n ast.Node, kind, callee, note string) {
	pos := c.fset.Position(n.Pos())
	c.findings = append(c.findings, Finding{Pos: pos, File: c.file_, Func: c.fn, Callee: callee, Kind: kind, Note: note})
}

func (c *checker) visit(n ast.Node) bool {
	switch s := n.(type) {
	case *ast.AssignStmt:
		c.assign(s)
	case *ast.ValueSpec:
		c.valueSpec(s)
	case *ast.ExprStmt:
		if call, ok := ast.Unparen(s.X).(*ast.CallExpr); ok && c.dropsError(call) {
			c.add(s, KindCall, c.callee(call), "")
		}
	case *ast.GoStmt:
		if c.dropsError(s.Call) {
			c.add(s, KindCall, c.callee(s.Call), "go statement")
		}
	case *ast.DeferStmt:
		c.deferStmt(s)
	}
	return true
}

func (c *checker) assign(s *ast.AssignStmt) {
	if len(s.Lhs) == len(s.Rhs) {
		for i, l := range s.Lhs {
			if isBlank(l) && isError(c.info.TypeOf(s.Rhs[i])) {
				c.add(s, KindBlank, c.dropped(s.Rhs[i]), "")
			}
		}
		return
	}
	if len(s.Rhs) != 1 {
		return
	}
	c.blankTuple(s, s.Lhs, s.Rhs[0])
}

func (c *checker) valueSpec(s *ast.ValueSpec) {
	lhs := make([]ast.Expr, len(s.Names))
	for i, n := range s.Names {
		lhs[i] = n
	}
	if len(s.Values) == len(lhs) {
		for i, l := range lhs {
			if isBlank(l) && isError(c.info.TypeOf(s.Values[i])) {
				c.add(s, KindBlank, c.dropped(s.Values[i]), "")
			}
		}
		return
	}
	if len(s.Values) == 1 {
		c.blankTuple(s, lhs, s.Values[0])
	}
}

// blankTuple reports blanks taking error results of one multi-valued expression.
func (c *checker) blankTuple(n ast.Node, lhs []ast.Expr, rhs ast.Expr) {
	tup, ok := c.info.TypeOf(rhs).(*types.Tuple)
	if !ok || tup.Len() != len(lhs) {
		return
	}
	for i, l := range lhs {
		if isBlank(l) && isError(tup.At(i).Type()) {
			c.add(n, KindBlank, c.dropped(rhs), "")
		}
	}
}

func isBlank(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == "_"
}

func (c *checker) dropped(e ast.Expr) string {
	if call, ok := ast.Unparen(e).(*ast.CallExpr); ok {
		return c.callee(call)
	}
	return types.ExprString(e)
}

// dropsError reports whether call's last result is an error and the callee
// is not one documented never to fail.
func (c *checker) dropsError(call *ast.CallExpr) bool {
	tv, ok := c.info.Types[call.Fun]
	if !ok || tv.IsType() || tv.IsBuiltin() {
		return false
	}
	sig, ok := tv.Type.Underlying().(*types.Signature)
	if !ok || sig.Results().Len() == 0 {
		return false
	}
	if !isError(sig.Results().At(sig.Results().Len() - 1).Type()) {
		return false
	}
	return !c.neverFails(call)
}

var neverFailTypes = map[string]bool{"bytes.Buffer": true, "strings.Builder": true}

// neverFails: Write methods of bytes.Buffer, strings.Builder and hash.Hash
// always return a nil error (their documentation says so).
func (c *checker) neverFails(call *ast.CallExpr) bool {
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok || !strings.HasPrefix(sel.Sel.Name, "Write") {
		return false
	}
	s, ok := c.info.Selections[sel]
	if !ok {
		return false
	}
	recv := s.Recv()
	if p, ok := recv.(*types.Pointer); ok {
		recv = p.Elem()
	}
	if neverFailTypes[types.TypeString(recv, nil)] {
		return true
	}
	// hash.Hash, Hash32, Hash64: "It never returns an error."
	named, ok := recv.(*types.Named)
	return ok && named.Obj().Pkg() != nil && named.Obj().Pkg().Path() == "hash"
}

// callee names what call calls: "os.Remove", "(*os.File).Close", or the
// function expression for calls of func values.
func (c *checker) callee(call *ast.CallExpr) string {
	fun := ast.Unparen(call.Fun)
	var id *ast.Ident
	switch f := fun.(type) {
	case *ast.Ident:
		id = f
	case *ast.SelectorExpr:
		id = f.Sel
	case *ast.IndexExpr: // generic instantiation
		return c.callee(&ast.CallExpr{Fun: f.X})
	case *ast.IndexListExpr:
		return c.callee(&ast.CallExpr{Fun: f.X})
	case *ast.FuncLit:
		return "func literal"
	}
	if id != nil {
		if fn, ok := c.info.Uses[id].(*types.Func); ok {
			return funcString(fn)
		}
	}
	return types.ExprString(fun)
}

func qualifier(p *types.Package) string { return p.Name() }

func funcString(fn *types.Func) string {
	sig := fn.Type().(*types.Signature)
	if recv := sig.Recv(); recv != nil {
		return "(" + types.TypeString(recv.Type(), qualifier) + ")." + fn.Name()
	}
	if fn.Pkg() == nil {
		return fn.Name()
	}
	return fn.Pkg().Name() + "." + fn.Name()
}

func (c *checker) deferStmt(s *ast.DeferStmt) {
	if !c.dropsError(s.Call) {
		return
	}
	callee := c.callee(s.Call)
	h := c.closeHandle(s.Call)
	if h == nil {
		c.add(s, KindDefer, callee, "deferred cleanup whose failure nobody learns of")
		return
	}
	if w := c.writesThrough(h); w != "" && !c.closesChecked(h, s.Call) {
		c.add(s, KindDefer, callee, "the function writes through it ("+w+") and never closes it with the error checked")
	}
}

// closeHandle returns the variable a Close call closes: the receiver of a
// Close method, or the first argument of a function named Close.
func (c *checker) closeHandle(call *ast.CallExpr) types.Object {
	switch f := ast.Unparen(call.Fun).(type) {
	case *ast.SelectorExpr:
		if f.Sel.Name != "Close" {
			return nil
		}
		if _, isMethod := c.info.Selections[f]; isMethod {
			return c.object(f.X)
		}
		if len(call.Args) == 1 { // syscall.Close(fd)
			return c.object(call.Args[0])
		}
	case *ast.Ident:
		if f.Name == "Close" && len(call.Args) == 1 {
			return c.object(call.Args[0])
		}
	}
	return nil
}

// object returns the variable e names: x, s.f, or int(x.Fd()) and the like
// reduced to x.
func (c *checker) object(e ast.Expr) types.Object {
	switch x := ast.Unparen(e).(type) {
	case *ast.Ident:
		return c.info.ObjectOf(x)
	case *ast.SelectorExpr:
		if _, ok := c.info.Selections[x]; ok {
			if sel := c.info.Selections[x]; sel.Kind() == types.FieldVal {
				return sel.Obj()
			}
			return nil
		}
		return c.info.ObjectOf(x.Sel)
	case *ast.CallExpr:
		if tv, ok := c.info.Types[x.Fun]; ok && tv.IsType() && len(x.Args) == 1 {
			return c.object(x.Args[0]) // conversion
		}
		if sel, ok := ast.Unparen(x.Fun).(*ast.SelectorExpr); ok && sel.Sel.Name == "Fd" {
			return c.object(sel.X)
		}
	}
	return nil
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Methods and functions that write through a handle (doc.go).
var (
	writeMethods = map[string]bool{"Write": true, "WriteAt": true, "WriteString": true, "WriteByte": true,
		"WriteRune": true, "ReadFrom": true, "Truncate": true, "Chmod": true, "Chown": true, "Fallocate": true}
	writeFuncs = []string{"Write", "Pwrite", "Ftruncate", "Fallocate"}
)

// writesThrough reports how the enclosing function writes through h, or ""
// when it does not.
func (c *checker) writesThrough(h types.Object) string {
	if c.body == nil {
		return ""
	}
	how := ""
	ast.Inspect(c.body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || how != "" {
			return how == ""
		}
		if sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
			if _, isMethod := c.info.Selections[sel]; isMethod && c.object(sel.X) == h && writeMethods[sel.Sel.Name] {
				how = sel.Sel.Name
				return false
			}
		}
		sig, _ := c.info.TypeOf(call.Fun).(*types.Signature)
		for i, a := range call.Args {
			if c.object(a) != h {
				continue
			}
			name := ""
			switch f := ast.Unparen(call.Fun).(type) {
			case *ast.Ident:
				name = f.Name
			case *ast.SelectorExpr:
				name = f.Sel.Name
			}
			if hasAnyPrefix(name, writeFuncs...) {
				how = name
				return false
			}
			if sig != nil && isWriterParam(sig, i) {
				how = "passed to " + name + " as a writer"
				return false
			}
		}
		return true
	})
	return how
}

func isWriterParam(sig *types.Signature, i int) bool {
	params := sig.Params()
	if params.Len() == 0 {
		return false
	}
	var t types.Type
	if i >= params.Len()-1 && sig.Variadic() {
		t = params.At(params.Len() - 1).Type().(*types.Slice).Elem()
	} else if i < params.Len() {
		t = params.At(i).Type()
	} else {
		return false
	}
	named, ok := t.(*types.Named)
	if !ok || named.Obj().Pkg() == nil || named.Obj().Pkg().Path() != "io" {
		return false
	}
	return strings.Contains(named.Obj().Name(), "Writer")
}

// closesChecked reports whether the enclosing function also closes h outside
// the deferred call with the error kept (not a call statement, not blank).
func (c *checker) closesChecked(h types.Object, deferred *ast.CallExpr) bool {
	found := false
	var stack []ast.Node
	ast.Inspect(c.body, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return false
		}
		stack = append(stack, n)
		call, ok := n.(*ast.CallExpr)
		if !ok || call == deferred || found {
			return !found
		}
		if c.closeHandle(call) != h {
			return true
		}
		switch parent := stack[len(stack)-2].(type) {
		case *ast.ExprStmt, *ast.DeferStmt, *ast.GoStmt:
		case *ast.AssignStmt:
			for i, r := range parent.Rhs {
				if r == call && i < len(parent.Lhs) && !isBlank(parent.Lhs[i]) {
					found = true
				}
			}
		default:
			found = true
		}
		return true
	})
	return found
}

// applyDirectives drops findings marked by a directive with a reason and
// reports directives that are malformed or mark nothing.
func (c *checker) applyDirectives(f *ast.File) []Finding {
	type mark struct {
		pos    token.Position
		reason string
		used   bool
	}
	marks := map[int]*mark{} // line the directive covers -> directive
	var all []*mark
	for _, cg := range f.Comments {
		for _, cm := range cg.List {
			if !strings.HasPrefix(cm.Text, Directive) {
				continue
			}
			rest := strings.TrimPrefix(cm.Text, Directive)
			if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
				continue
			}
			pos := c.fset.Position(cm.Pos())
			m := &mark{pos: pos, reason: strings.TrimSpace(rest)}
			all = append(all, m)
			line := pos.Line
			if c.aloneOnLine(cm) {
				line++
			}
			marks[line] = m
		}
	}
	var out []Finding
	for _, fd := range c.findings {
		if m := marks[fd.Pos.Line]; m != nil && m.reason != "" {
			m.used = true
			continue
		}
		out = append(out, fd)
	}
	for _, m := range all {
		switch {
		case m.reason == "":
			out = append(out, Finding{Pos: m.pos, File: c.file_, Kind: KindDirective, Callee: Directive, Note: "give a reason"})
		case !m.used:
			out = append(out, Finding{Pos: m.pos, File: c.file_, Kind: KindDirective, Callee: Directive, Note: "marks no dropped error: remove it"})
		}
	}
	c.findings = nil
	return out
}

// aloneOnLine reports whether comment cm is the only thing on its line.
func (c *checker) aloneOnLine(cm *ast.Comment) bool {
	pos := c.fset.Position(cm.Pos())
	src, err := c.source(pos.Filename)
	if err != nil {
		return false
	}
	lineStart := pos.Offset - (pos.Column - 1)
	return strings.TrimSpace(string(src[lineStart:pos.Offset])) == ""
}

func (c *checker) source(name string) ([]byte, error) {
	if c.src == nil || c.srcName != name {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		c.src, c.srcName = b, name
	}
	return c.src, nil
}
