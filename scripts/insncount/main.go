// Command insncount counts the guest instructions one BlazeFace Run executes
// under qemu-user, so model variants compare by work done rather than by
// emulated time (which qemu's softfloat helpers and the shared machine
// distort). Debian 12's qemu 7.2 has no TCG plugins, so the count comes
// from qemu's own log: -d in_asm lists each translated block's instructions
// once, -d exec,nochain logs every execution of a block (nochain: blocks do
// not jump to each other unlogged), and the sum over executions of each
// block's length is the instruction count (checked equal to
// -singlestep's one-instruction-per-block count on a small program).
//
// Two modes, one program:
//
//	insncount run -model M.manifest.json -image F -n N   (the arm64 guest)
//	insncount count -bin B [-log F]                      (the host, reads qemu's log)
//
// run loads the model, letterboxes nothing (a plain resize of F: the
// instruction count of a Run does not depend on the pixels) and calls Run N
// times on one locked OS thread, calling mark before each Run and after the
// last. count finds mark's address in B's symbol table, and sums the
// instructions that thread executes between consecutive marks, so model
// load, other threads (Go's sysmon, GC workers) and process exit are not
// counted. scripts/arm64.sh insncount drives both.
package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "count":
		err = cmdCount(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "insncount:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: insncount run -model M -image F -n N | insncount count -bin B [-log F]")
	os.Exit(2)
}

// mark is where count splits the log: its entry starts a translated block
// (a call ends one), whose execution is logged.
//
//go:noinline
func mark() { marks++ }

var marks int

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	model := fs.String("model", "models/blazeface-back.manifest.json", "BlazeFace manifest")
	frame := fs.String("image", "deps/media/astronaut.png", "the frame (resized to the model's input)")
	n := fs.Int("n", 3, "Runs")
	_ = fs.Parse(args)
	runtime.LockOSThread() // count follows one guest thread
	m, err := engine.LoadManifest(*model)
	if err != nil {
		return err
	}
	rt, err := engine.NewRuntime(engine.RuntimeConfig{Providers: []string{"cpu"}, IntraOpThreads: 1})
	if err != nil {
		return err
	}
	defer rt.Close()
	r, err := engine.NewBlazeFaceRunner(rt, m)
	if err != nil {
		return err
	}
	defer r.Close()
	img := gocv.IMRead(*frame, gocv.IMReadColor)
	if img.Empty() {
		return fmt.Errorf("%s: cannot read the image", *frame)
	}
	defer img.Close()
	w, h := r.InputSize()
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(img, &small, image.Point{X: w, Y: h}, 0, 0, gocv.InterpolationLinear)
	gocv.CvtColor(small, &small, gocv.ColorBGRToRGB)
	rgb := small.ToBytes()
	var best float32
	for range *n {
		mark()
		logits, _, err := r.Infer(rgb)
		if err != nil {
			return err
		}
		best = slices.Max(logits)
	}
	mark()
	fmt.Printf("%s: %d Runs (%d marks), max logit %.4f\n", m.Ref(), *n, marks, best)
	return nil
}

func cmdCount(args []string) error {
	fs := flag.NewFlagSet("count", flag.ExitOnError)
	bin := fs.String("bin", "bin/insncount-linux-arm64", "the guest binary (for mark's address)")
	logPath := fs.String("log", "-", "qemu's -d in_asm,exec,nochain log (a file or fifo; - is stdin)")
	markSym := fs.String("mark", "main.mark", "the symbol whose executions split the count")
	_ = fs.Parse(args)
	addr, err := symbol(*bin, *markSym)
	if err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if *logPath != "-" {
		f, err := os.Open(*logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	c, err := count(in, addr)
	if err != nil {
		return err
	}
	fmt.Printf("total %d instructions (all threads, load and exit included), %d Runs\n", c.total, len(c.runs))
	if c.marks == 0 {
		return fmt.Errorf("%s (%#x) never ran: not the binary qemu ran, or no -d exec,nochain in the log", *markSym, addr)
	}
	for i, v := range c.runs {
		fmt.Printf("run %d %d\n", i, v)
	}
	return nil
}

func symbol(path, name string) (uint64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return 0, fmt.Errorf("%s: %w (build it without -s)", path, err)
	}
	for _, s := range syms {
		if s.Name == name {
			return s.Value, nil
		}
	}
	return 0, fmt.Errorf("%s: no symbol %s (not an insncount binary?)", path, name)
}

type counts struct {
	total uint64   // every executed instruction in the log
	marks int      // executions of mark (any thread)
	runs  []uint64 // the marking thread's instructions between marks
}

// count reads qemu's log: "IN:" blocks of "0xPC:  insn" lines (one per
// translation; a retranslation replaces the length) and "Trace CPU: host
// [cs_base/PC/flags/cflags] sym" lines (one per execution).
func count(r io.Reader, markPC uint64) (counts, error) {
	var c counts
	size := map[uint64]uint32{}
	br := bufio.NewReaderSize(r, 1<<20)
	var block uint64
	inBlock := false
	cpu := -1 // the marking thread's qemu CPU index
	var acc uint64
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return c, fmt.Errorf("log line over 1 MiB")
		}
		if len(line) > 0 {
			switch {
			case bytes.HasPrefix(line, []byte("Trace ")):
				inBlock = false
				k, pc, ok := parseTrace(line)
				if !ok {
					return c, fmt.Errorf("unparsed trace line %q", line)
				}
				n, ok := size[pc]
				if !ok {
					return c, fmt.Errorf("block %#x executed before its in_asm listing: log needs -d in_asm,exec,nochain", pc)
				}
				c.total += uint64(n)
				if pc == markPC {
					c.marks++
					switch {
					case cpu < 0: // the first mark: its thread is the Run thread
						cpu = k
					case k == cpu:
						c.runs = append(c.runs, acc)
					}
					if k == cpu {
						acc = 0
					}
				}
				if k == cpu {
					acc += uint64(n)
				}
			case bytes.HasPrefix(line, []byte("IN:")):
				inBlock, block = true, 0
			case inBlock && bytes.HasPrefix(line, []byte("0x")):
				i := bytes.IndexByte(line, ':')
				if i < 0 {
					break
				}
				pc, perr := strconv.ParseUint(string(line[2:i]), 16, 64)
				if perr != nil {
					return c, fmt.Errorf("unparsed in_asm line %q", line)
				}
				if block == 0 {
					block = pc
					size[pc] = 0
				}
				size[block]++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, err
		}
	}
	// The last interval ends at the final mark; what follows is exit.
	return c, nil
}

// parseTrace returns CPU and PC of "Trace 0: 0x7f.. [0000/0000000000400580/00000001/00000200] sym".
func parseTrace(line []byte) (int, uint64, bool) {
	rest := line[len("Trace "):]
	i := bytes.IndexByte(rest, ':')
	if i < 0 {
		return 0, 0, false
	}
	k, err := strconv.Atoi(string(rest[:i]))
	if err != nil {
		return 0, 0, false
	}
	j := bytes.IndexByte(rest, '[')
	if j < 0 {
		return 0, 0, false
	}
	f := bytes.SplitN(rest[j+1:], []byte("/"), 3)
	if len(f) < 3 {
		return 0, 0, false
	}
	pc, err := strconv.ParseUint(string(f[1]), 16, 64)
	return k, pc, err == nil
}
