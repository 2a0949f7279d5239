package main

import (
	"strings"
	"testing"
)

// A qemu 7.2 log in the shape of -d in_asm,exec,nochain: blocks 0x400000
// (3 instructions), mark at 0x400100 (2), 0x400200 (1, retranslated with
// 4); CPU 1 is another guest thread.
const qemuLog = `----------------
IN: main
0x00400000:  d2800000  movz     x0, #0
0x00400004:  d2800001  movz     x1, #0
0x00400008:  94000040  bl       #0x400100

Trace 0: 0x7f0000000100 [0000000001009331/0000000000400000/00000001/00000200] main
----------------
IN: main.mark
0x00400100:  91000400  add      x0, x0, #1
0x00400104:  d65f03c0  ret

Trace 0: 0x7f0000000200 [0000000001009331/0000000000400100/00000001/00000200] main.mark
----------------
IN: work
0x00400200:  d65f03c0  ret

Trace 0: 0x7f0000000300 [0000000001009331/0000000000400200/00000001/00000200] work
Trace 1: 0x7f0000000100 [0000000001009331/0000000000400000/00000001/00000200] main
Trace 0: 0x7f0000000300 [0000000001009331/0000000000400200/00000001/00000200] work
Trace 0: 0x7f0000000200 [0000000001009331/0000000000400100/00000001/00000200] main.mark
----------------
IN: work
0x00400200:  91000400  add      x0, x0, #1
0x00400204:  91000400  add      x0, x0, #1
0x00400208:  91000400  add      x0, x0, #1
0x0040020c:  d65f03c0  ret

Trace 0: 0x7f0000000400 [0000000001009331/0000000000400200/00000001/00000200] work
Trace 1: 0x7f0000000200 [0000000001009331/0000000000400100/00000001/00000200] main.mark
Trace 0: 0x7f0000000200 [0000000001009331/0000000000400100/00000001/00000200] main.mark
Trace 0: 0x7f0000000100 [0000000001009331/0000000000400000/00000001/00000200] main
`

// TestCount: every execution adds its block's length to the total; each
// interval between the marking thread's marks holds that thread's blocks
// only (mark's own block starts the interval it opens), and a
// retranslated block counts with its new length.
func TestCount(t *testing.T) {
	c, err := count(strings.NewReader(qemuLog), 0x400100)
	if err != nil {
		t.Fatal(err)
	}
	// 3 + 2 + 1 + 3 (CPU 1) + 1 + 2 + 4 + 2 (CPU 1) + 2 + 3
	if c.total != 23 || c.marks != 4 {
		t.Errorf("total %d, marks %d; want 23, 4", c.total, c.marks)
	}
	// [mark 2, work 1, work 1] then [mark 2, work 4]; CPU 1's mark and main not counted.
	if len(c.runs) != 2 || c.runs[0] != 4 || c.runs[1] != 6 {
		t.Errorf("runs %v, want [4 6]", c.runs)
	}
	if _, err := count(strings.NewReader("Trace 0: 0x7f00 [0/0000000000400000/00000001/00000200] main\n"), 0x400100); err == nil ||
		!strings.Contains(err.Error(), "in_asm") {
		t.Errorf("a block with no listing: %v, want an error naming in_asm", err)
	}
}
