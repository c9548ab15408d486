#include <immintrin.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <chrono>
#include <algorithm>
// B=1: c[32] = sum_k a[k]*panel[k][0..32], panel K x 32 floats; tiles panels total
template<int PF>
__attribute__((noinline)) void k1(const float* a, const float* p, long K, float* c) {
  __m256 a0=_mm256_setzero_ps(),a1=a0,a2=a0,a3=a0, e0=a0,e1=a0,e2=a0,e3=a0;
  for(long k=0;k<K;k+=2){
    const float* w=p+k*32;
    if(PF) { _mm_prefetch((const char*)(w+PF),_MM_HINT_T0); _mm_prefetch((const char*)(w+PF+16),_MM_HINT_T0); _mm_prefetch((const char*)(w+PF+32),_MM_HINT_T0); _mm_prefetch((const char*)(w+PF+48),_MM_HINT_T0);}
    __m256 x=_mm256_broadcast_ss(a+k), y=_mm256_broadcast_ss(a+k+1);
    a0=_mm256_fmadd_ps(x,_mm256_loadu_ps(w),a0); a1=_mm256_fmadd_ps(x,_mm256_loadu_ps(w+8),a1);
    a2=_mm256_fmadd_ps(x,_mm256_loadu_ps(w+16),a2); a3=_mm256_fmadd_ps(x,_mm256_loadu_ps(w+24),a3);
    e0=_mm256_fmadd_ps(y,_mm256_loadu_ps(w+32),e0); e1=_mm256_fmadd_ps(y,_mm256_loadu_ps(w+40),e1);
    e2=_mm256_fmadd_ps(y,_mm256_loadu_ps(w+48),e2); e3=_mm256_fmadd_ps(y,_mm256_loadu_ps(w+56),e3);
  }
  _mm256_storeu_ps(c,a0+e0);_mm256_storeu_ps(c+8,a1+e1);_mm256_storeu_ps(c+16,a2+e2);_mm256_storeu_ps(c+24,a3+e3);
}
int main(int argc,char**argv){
  long H=atol(argv[1]); long K=H, N=4*H; long tiles=N/32; // W_hh: 4H x H
  std::vector<float> A(K,0.001f), P(tiles*K*32,0.001f); std::vector<float> C(N);
  auto run=[&](auto f,const char* name){ double best=1e9; for(int r=0;r<5;++r){ auto t0=std::chrono::steady_clock::now(); int steps=200;
      for(int s=0;s<steps;++s) for(long u=0;u<tiles;++u) f(A.data(),P.data()+u*K*32,K,C.data()+u*32);
      best=std::min(best,std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count()/steps);} 
    printf("H=%ld %s: %.1f us/step %.1f GB/s\n",H,name,best*1e6,P.size()*4/best/1e9); };
  run(k1<0>,"nopf"); run(k1<256>,"pf1KB"); run(k1<512>,"pf2KB"); run(k1<1024>,"pf4KB");
}
