/* vecmath.c - the few vectorized transcendental loops the ops need (exp, sigmoid, max).
 *
 * The build targets baseline x86-64, so the AVX2+FMA versions are compiled with a
 * target attribute and chosen at run time (__builtin_cpu_supports); other CPUs use the
 * scalar loops. exp uses the classic range reduction x = n ln2 + r (ln2 split in two
 * constants) and a degree-6 polynomial for e^r, relative error about 2e-7, with inputs
 * clamped to [-87.3, 88.3] so the result stays finite. Never allocates.
 */
#include "cpu.h"

#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RF_HAVE_X86 1
#endif

static int s_avx2(void)
{
#ifdef RF_HAVE_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
#else
    return 0;
#endif
}

#ifdef RF_HAVE_X86
__attribute__((target("avx2,fma"))) static inline __m256 s_exp8(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.3f), lo = _mm256_set1_ps(-87.3f);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2,fma"))) static inline float s_hsum8(__m256 v)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

__attribute__((target("avx2,fma"))) static float s_exp_shift_sum_avx2(float *p, const float *s,
                                                                      float m, int64_t n)
{
    __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = s_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
        _mm256_storeu_ps(p + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = s_hsum8(acc);
    for (; i < n; i++) {
        p[i] = expf(s[i] - m);
        sum += p[i];
    }
    return sum;
}

__attribute__((target("avx2,fma"))) static void s_sigmoid_mul_avx2(float *y, const float *x,
                                                                   float k, float c, int64_t n)
{
    __m256 vk = _mm256_set1_ps(-k), vc = _mm256_set1_ps(-c), one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 u = _mm256_fmadd_ps(_mm256_mul_ps(vc, v), _mm256_mul_ps(v, v), _mm256_mul_ps(vk, v));
        __m256 e = s_exp8(u);
        _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) {
        float v = x[i];
        y[i] = v / (1.0f + expf(-k * v - c * v * v * v));
    }
}

__attribute__((target("avx2,fma"))) static float s_max_avx2(const float *x, int64_t n)
{
    int64_t i = 0;
    float m = x[0];
    if (n >= 8) {
        __m256 vm = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8)
            vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
        __m128 a = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
        a = _mm_max_ps(a, _mm_movehl_ps(a, a));
        a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
        m = _mm_cvtss_f32(a);
    }
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}
#endif

float rf_cpu_exp_shift_sum(float *p, const float *s, float m, int64_t n)
{
#ifdef RF_HAVE_X86
    if (s_avx2())
        return s_exp_shift_sum_avx2(p, s, m, n);
#endif
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        p[i] = expf(s[i] - m);
        sum += p[i];
    }
    return sum;
}

void rf_cpu_sigmoid_mul(float *y, const float *x, float k, float c, int64_t n)
{
#ifdef RF_HAVE_X86
    if (s_avx2()) {
        s_sigmoid_mul_avx2(y, x, k, c, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v / (1.0f + expf(-k * v - c * v * v * v));
    }
}

float rf_cpu_max(const float *x, int64_t n)
{
#ifdef RF_HAVE_X86
    if (s_avx2())
        return s_max_avx2(x, n);
#endif
    float m = x[0];
    for (int64_t i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}
