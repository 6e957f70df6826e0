/* Portable C: one float at a time, multiply then add (C11 does not contract
 * a*b + c into a fused operation). */
#define SUFFIX(name) name##_c
#define LEVEL_NAME "c"
#define VW 1
typedef float vec;
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSET1(x) (x)
#define VFMA(acc, a, b) ((acc) + (a) * (b))
#define SFMA(acc, a, b) ((acc) + (a) * (b))
#define VSTORE_PAIR(p, even, odd) ((p)[0] = (even), (p)[1] = (odd))
#include "dsp-impl.h"
#include "convert-impl.h"
