#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cmath>
extern "C" __m512 Sleef_tanhf16_u10(__m512); extern "C" __m512 Sleef_tanhf16_u35(__m512); extern "C" __m512 Sleef_expf16_u10(__m512);
template<class F> double bench(F f){ float buf[16*1024]; for(int i=0;i<16*1024;i++) buf[i]=(i%200-100)*0.05f;
 auto t0=std::chrono::steady_clock::now(); __m512 acc=_mm512_setzero_ps();
 for(int r=0;r<2000;r++) for(int i=0;i<1024;i++) acc=_mm512_add_ps(acc,f(_mm512_loadu_ps(buf+16*i)));
 double s=std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count(); float o[16]; _mm512_storeu_ps(o,acc); if(o[0]==1234.5f) printf("x");
 return s/(2000*1024)*1e9; }
int main(){ printf("u10 %.2f ns/vec, u35 %.2f ns/vec, exp %.2f ns/vec\n", bench(Sleef_tanhf16_u10), bench(Sleef_tanhf16_u35), bench(Sleef_expf16_u10));
 float mx=0; for(int i=-4000;i<4000;i++){ float x=i*0.0025f; float a[16]; _mm512_storeu_ps(a,Sleef_tanhf16_u35(_mm512_set1_ps(x))); double ref=std::tanh((double)x); double e=std::fabs(a[0]-ref)/std::max(1e-30,std::fabs(ref)); if(e>mx) mx=e;} printf("u35 max rel err %.2e\n",mx);}
