#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cstring>
// One thread's share of a B=1 LSTM step: NT tiles of 64 gate columns, panels [K][64].
static int H, I, NT, T, S;
static float *whh, *wih, *x, *h, *gates, *outp;
static inline __m512 bc(const float* p){return _mm512_set1_ps(*p);}
__attribute__((noinline)) void step_tile(const float* pan, const float* hv, float* c) {
  __m512 a0=_mm512_setzero_ps(),a1=a0,a2=a0,a3=a0;
  for (int k=0;k<H;++k){ __m512 xb=bc(hv+k); const float* w=pan+k*64;
    a0=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w),a0);a1=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+16),a1);
    a2=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+32),a2);a3=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+48),a3);}
  _mm512_storeu_ps(c,a0);_mm512_storeu_ps(c+16,a1);_mm512_storeu_ps(c+32,a2);_mm512_storeu_ps(c+48,a3);
}
// projection of rows [r0,r0+4) of x, k in [k0,k1), panel wp, accumulate into o (ld 64)
static inline void proj4(const float* xr, const float* wp, int k0, int k1, float* o, bool acc) {
  __m512 c[4][4];
  for(int m=0;m<4;++m)for(int v=0;v<4;++v) c[m][v]= acc? _mm512_loadu_ps(o+m*64+v*16):_mm512_setzero_ps();
  for(int k=k0;k<k1;++k){ const float* w=wp+k*64; __m512 b0=_mm512_loadu_ps(w),b1=_mm512_loadu_ps(w+16),b2=_mm512_loadu_ps(w+32),b3=_mm512_loadu_ps(w+48);
    for(int m=0;m<4;++m){__m512 xb=bc(xr+m*I+k); c[m][0]=_mm512_fmadd_ps(xb,b0,c[m][0]);c[m][1]=_mm512_fmadd_ps(xb,b1,c[m][1]);c[m][2]=_mm512_fmadd_ps(xb,b2,c[m][2]);c[m][3]=_mm512_fmadd_ps(xb,b3,c[m][3]);}}
  for(int m=0;m<4;++m)for(int v=0;v<4;++v) _mm512_storeu_ps(o+m*64+v*16,c[m][v]);
}
// fused: W_hh tile product for one row, interleaved with the projection of S rows over k-slice [k0,k1)
__attribute__((noinline)) void step_tile_fused(const float* pan, const float* hv, float* c, const float* xr, const float* wp, int k0, int k1, float* o, bool acc) {
  __m512 a0=_mm512_setzero_ps(),a1=a0,a2=a0,a3=a0;
  int kh=0; const int nk=k1-k0; const int blocks=S/4;
  // spread: total proj k-iterations = blocks*nk; W_hh iterations H. ratio
  const int per = (H + blocks*nk - 1)/(blocks*nk); // W_hh iterations per proj iteration
  for(int rb=0;rb<blocks;++rb){
    __m512 p[4][4]; float* orow=o+rb*4*64; const float* xrb=xr+rb*4*I;
    for(int m=0;m<4;++m)for(int v=0;v<4;++v) p[m][v]= acc? _mm512_loadu_ps(orow+m*64+v*16):_mm512_setzero_ps();
    for(int k=k0;k<k1;++k){
      for(int j=0;j<per && kh<H;++j,++kh){ __m512 xb=bc(hv+kh); const float* w=pan+kh*64;
        a0=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w),a0);a1=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+16),a1);
        a2=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+32),a2);a3=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+48),a3);}
      const float* w=wp+k*64; __m512 b0=_mm512_loadu_ps(w),b1=_mm512_loadu_ps(w+16),b2=_mm512_loadu_ps(w+32),b3=_mm512_loadu_ps(w+48);
      for(int m=0;m<4;++m){__m512 xb=bc(xrb+m*I+k); p[m][0]=_mm512_fmadd_ps(xb,b0,p[m][0]);p[m][1]=_mm512_fmadd_ps(xb,b1,p[m][1]);p[m][2]=_mm512_fmadd_ps(xb,b2,p[m][2]);p[m][3]=_mm512_fmadd_ps(xb,b3,p[m][3]);}
    }
    for(int m=0;m<4;++m)for(int v=0;v<4;++v) _mm512_storeu_ps(orow+m*64+v*16,p[m][v]);
  }
  for(;kh<H;++kh){ __m512 xb=bc(hv+kh); const float* w=pan+kh*64;
    a0=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w),a0);a1=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+16),a1);
    a2=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+32),a2);a3=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+48),a3);}
  _mm512_storeu_ps(c,a0);_mm512_storeu_ps(c+16,a1);_mm512_storeu_ps(c+32,a2);_mm512_storeu_ps(c+48,a3);
}
// joint: W_hh product for one row, and one projection unit (4 rows x vec v, full K)
__attribute__((noinline)) void step_tile_unit(const float* pan, const float* hv, float* c, const float* xr, const float* wp, int v, float* o) {
  __m512 a0=_mm512_setzero_ps(),a1=a0,a2=a0,a3=a0, p0=a0,p1=a0,p2=a0,p3=a0;
  const float* wv=wp+v*16;
  for (int k=0;k<H;++k){ __m512 xb=bc(hv+k); const float* w=pan+k*64;
    a0=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w),a0);a1=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+16),a1);
    a2=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+32),a2);a3=_mm512_fmadd_ps(xb,_mm512_loadu_ps(w+48),a3);
    __m512 b=_mm512_loadu_ps(wv+k*64);
    p0=_mm512_fmadd_ps(bc(xr+k),b,p0);p1=_mm512_fmadd_ps(bc(xr+I+k),b,p1);p2=_mm512_fmadd_ps(bc(xr+2*I+k),b,p2);p3=_mm512_fmadd_ps(bc(xr+3*I+k),b,p3);}
  _mm512_storeu_ps(c,a0);_mm512_storeu_ps(c+16,a1);_mm512_storeu_ps(c+32,a2);_mm512_storeu_ps(c+48,a3);
  _mm512_storeu_ps(o+v*16,p0);_mm512_storeu_ps(o+64*NT+v*16,p1);_mm512_storeu_ps(o+2*64*NT+v*16,p2);_mm512_storeu_ps(o+3*64*NT+v*16,p3);
}
double now(){return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();}
int main(int argc,char**argv){
  H=atoi(argv[1]); I=H; NT=atoi(argv[2]); T=atoi(argv[3]); S=16;
  whh=(float*)aligned_alloc(64,sizeof(float)*NT*H*64); wih=(float*)aligned_alloc(64,sizeof(float)*NT*I*64);
  x=(float*)aligned_alloc(64,sizeof(float)*(T+S)*I); h=(float*)aligned_alloc(64,sizeof(float)*H);
  gates=(float*)aligned_alloc(64,sizeof(float)*(T+S)*NT*64); outp=(float*)aligned_alloc(64,sizeof(float)*NT*64);
  for(long i=0;i<(long)NT*H*64;++i){whh[i]=(i%7)*0.01f;wih[i]=(i%5)*0.01f;}
  for(long i=0;i<(long)(T+S)*I;++i)x[i]=(i%3)*0.1f; for(int i=0;i<H;++i)h[i]=0.1f;
  double best[5]={1e9,1e9,1e9,1e9,1e9};
  for(int rep=0;rep<15;++rep){
    // A: projection up front, then steps
    double t0=now();
    for(int u=0;u<NT;++u) for(int r=0;r<T;r+=4) proj4(x+r*I, wih+(long)u*I*64, 0, I, gates+((long)r*NT+u)*64, false);
    for(int t=0;t<T;++t) for(int u=0;u<NT;++u) step_tile(whh+(long)u*H*64,h,outp+u*64);
    double t1=now();
    for(int t=0;t<T;++t) for(int u=0;u<NT;++u) step_tile(whh+(long)u*H*64,h,outp+u*64);
    double t2=now();
    // C: fused. chunk of S steps: step q projects k-slice q of next chunk's S rows for every tile
    for(int u=0;u<NT;++u) for(int r=0;r<S;r+=4) proj4(x+r*I, wih+(long)u*I*64, 0, I, gates+((long)r*NT+u)*64, false);
    const int ks=(I+S-1)/S;
    for(int t=0;t<T;++t){ int q=t%S; int nxt=(t/S+1)*S; int k0=q*ks,k1=std::min(I,k0+ks);
      for(int u=0;u<NT;++u){ if(nxt<T && k0<k1) step_tile_fused(whh+(long)u*H*64,h,outp+u*64,x+(long)nxt*I,wih+(long)u*I*64,k0,k1,gates+((long)nxt*NT+u)*64,q>0); else step_tile(whh+(long)u*H*64,h,outp+u*64);} }
    double t3=now();
    for(int t=0;t<T;++t){ int q=t%S; int nxt=(t/S+1)*S; int k0=q*ks,k1=std::min(I,k0+ks);
      for(int u=0;u<NT;++u){ step_tile(whh+(long)u*H*64,h,outp+u*64); if(nxt<T && k0<k1) for(int r=0;r<S;r+=4) proj4(x+(long)(nxt+r)*I, wih+(long)u*I*64, k0, k1, gates+((long)(nxt+r)*NT+u)*64, q>0);} }
    double t4=now(); best[3]=std::min(best[3],t4-t3);
    for(int t=0;t<T;++t){ int q=t%S; int nxt=(t/S+1)*S; int rb=q/4, v=q%4;
      for(int u=0;u<NT;++u){ if(nxt<T) step_tile_unit(whh+(long)u*H*64,h,outp+u*64,x+(long)(nxt+rb*4)*I,wih+(long)u*I*64,v,gates+((long)(nxt+rb*4)*NT+u)*64); else step_tile(whh+(long)u*H*64,h,outp+u*64);} }
    double t5=now(); best[4]=std::min(best[4],t5-t4);
    best[0]=std::min(best[0],t1-t0);best[1]=std::min(best[1],t2-t1);best[2]=std::min(best[2],t3-t2);
  }
  printf("H=%d NT=%d T=%d  separate %.3f ms  steps-only %.3f ms  fused %.3f ms  sequential-slices %.3f  unit-joint %.3f\n",H,NT,T,best[0]*1e3,best[1]*1e3,best[2]*1e3,best[3]*1e3,best[4]*1e3);
}
