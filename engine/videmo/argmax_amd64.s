#include "textflag.h"

// func maxVec(v []float32) float32
//
// VMAXPS returns its second source when either operand is NaN, so with the
// data as the first source and the running maximum as the second a NaN in v
// never replaces the maximum.
TEXT ·maxVec(SB), NOSPLIT, $0-28
	MOVQ v_base+0(FP), SI
	MOVQ v_len+8(FP), CX
	MOVL $0xff800000, AX // -Inf
	MOVL AX, X0
	VBROADCASTSS X0, Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y0, Y3

loop32:
	CMPQ CX, $32
	JB   loop8
	VMOVUPS 0(SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VMAXPS Y0, Y4, Y0
	VMAXPS Y1, Y5, Y1
	VMAXPS Y2, Y6, Y2
	VMAXPS Y3, Y7, Y3
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  loop32

loop8:
	CMPQ CX, $8
	JB   reduce
	VMOVUPS (SI), Y4
	VMAXPS Y0, Y4, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  loop8

reduce:
	// the accumulators hold no NaN: operand order no longer matters
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0

tail:
	TESTQ CX, CX
	JZ    done
	VMOVSS (SI), X4
	VMAXSS X0, X4, X0
	ADDQ $4, SI
	DECQ CX
	JMP  tail

done:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func findVec(v []float32, x float32) int
TEXT ·findVec(SB), NOSPLIT, $0-40
	MOVQ v_base+0(FP), SI
	MOVQ v_len+8(FP), CX
	VBROADCASTSS x+24(FP), Y0
	XORQ DX, DX

loop32:
	LEAQ 32(DX), AX
	CMPQ AX, CX
	JA   loop8
	VCMPPS $0, (SI)(DX*4), Y0, Y1
	VCMPPS $0, 32(SI)(DX*4), Y0, Y2
	VCMPPS $0, 64(SI)(DX*4), Y0, Y3
	VCMPPS $0, 96(SI)(DX*4), Y0, Y4
	VORPS  Y1, Y2, Y5
	VORPS  Y3, Y4, Y6
	VORPS  Y5, Y6, Y5
	VPTEST Y5, Y5
	JNZ    loop8 // a match in these 32: pin it down 8 at a time
	ADDQ   $32, DX
	JMP    loop32

loop8:
	LEAQ 8(DX), AX
	CMPQ AX, CX
	JA   tail
	VCMPPS $0, (SI)(DX*4), Y0, Y1
	VMOVMSKPS Y1, AX
	TESTL AX, AX
	JNZ   found
	ADDQ  $8, DX
	JMP   loop8

found:
	BSFL AX, AX
	ADDQ AX, DX
	MOVQ DX, ret+32(FP)
	VZEROUPPER
	RET

tail:
	CMPQ DX, CX
	JAE  none
	VUCOMISS (SI)(DX*4), X0
	JNE  next
	JP   next
	MOVQ DX, ret+32(FP)
	VZEROUPPER
	RET

next:
	INCQ DX
	JMP  tail

none:
	MOVQ $-1, ret+32(FP)
	VZEROUPPER
	RET
