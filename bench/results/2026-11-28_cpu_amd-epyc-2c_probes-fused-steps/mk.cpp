#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <vector>
#include <cstdlib>
using clk=std::chrono::steady_clock;
__attribute__((noinline)) void peak(long n, float* out){
  __m512 a[24]; for(int i=0;i<24;i++) a[i]=_mm512_set1_ps(i*0.001f);
  __m512 x=_mm512_set1_ps(0.999f), y=_mm512_set1_ps(0.0001f);
  for(long k=0;k<n;k++){
#pragma GCC unroll 24
    for(int i=0;i<24;i++) a[i]=_mm512_fmadd_ps(a[i],x,y);
  }
  __m512 s=a[0]; for(int i=1;i<24;i++) s=_mm512_add_ps(s,a[i]); _mm512_storeu_ps(out,s);
}
template<int MR,int NV>
__attribute__((noinline)) void tile(const float* a,long lda,const float* w,long K,float* c){
  __m512 acc[MR][NV];
  for(int m=0;m<MR;m++)for(int v=0;v<NV;v++)acc[m][v]=_mm512_setzero_ps();
  for(long k=0;k<K;k++){
    __m512 b[NV];
#pragma GCC unroll 8
    for(int v=0;v<NV;v++) b[v]=_mm512_loadu_ps(w+(k*NV+v)*16);
#pragma GCC unroll 8
    for(int m=0;m<MR;m++){ __m512 x=_mm512_set1_ps(a[m*lda+k]);
#pragma GCC unroll 8
      for(int v=0;v<NV;v++) acc[m][v]=_mm512_fmadd_ps(x,b[v],acc[m][v]);}
  }
  for(int m=0;m<MR;m++)for(int v=0;v<NV;v++)_mm512_storeu_ps(c+(m*NV+v)*16,acc[m][v]);
}
int main(){
  float out[16];
  long n=100000000/24;
  auto t0=clk::now(); peak(n,out); double s=std::chrono::duration<double>(clk::now()-t0).count();
  printf("peak 1 core: %.1f GFLOP/s\n", n*24*32/s/1e9);
  for(long K: {64L,128L,256L,512L,1024L}){
    std::vector<float> A(6*K,1.0f), W(K*64,0.5f), C(6*64);
    long reps= 200000000L/(K*6*64);
    t0=clk::now(); for(long r=0;r<reps;r++) tile<6,4>(A.data(),K,W.data(),K,C.data());
    s=std::chrono::duration<double>(clk::now()-t0).count();
    printf("tile 6x64 K=%ld (panel %ld KB) %.1f GFLOP/s\n",K,K*64*4/1024, reps*2.0*6*64*K/s/1e9);
  }
  // many row blocks streaming same panel, B=64 rows, K=256, panel 64KB; 16 tiles (1MB of panels)
  for(long K: {256L,1024L}){
  long B=66, ntile=16; std::vector<float> A(B*K,1.0f), W(ntile*K*64,0.5f), C(6*64);
  long reps=20;
  t0=clk::now();
  for(long r=0;r<reps;r++) for(long u=0;u<ntile;u++) for(long rb=0;rb<B;rb+=6) tile<6,4>(A.data()+rb*K,K,W.data()+u*K*64,K,C.data());
  s=std::chrono::duration<double>(clk::now()-t0).count();
  printf("step B=%ld K=%ld ntile=%ld: %.1f GFLOP/s\n",B,K,ntile, reps*2.0*B*ntile*64*K/s/1e9);
  }
}
