#include <immintrin.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <chrono>
#include <algorithm>
template<int MR>
static inline void kern(const float* a, long lda, const float* p, long K, float* c, long ldc, int pf) {
  __m256 acc[MR][4];
  for(int m=0;m<MR;++m) for(int v=0;v<4;++v) acc[m][v]=_mm256_setzero_ps();
  for(long k=0;k<K;++k){
    const float* w=p+k*32;
    if(pf) _mm_prefetch((const char*)(w+pf*32),_MM_HINT_T0), _mm_prefetch((const char*)(w+pf*32+16),_MM_HINT_T0);
    __m256 b0=_mm256_loadu_ps(w),b1=_mm256_loadu_ps(w+8),b2=_mm256_loadu_ps(w+16),b3=_mm256_loadu_ps(w+24);
    for(int m=0;m<MR;++m){ __m256 x=_mm256_broadcast_ss(a+m*lda+k);
      acc[m][0]=_mm256_fmadd_ps(x,b0,acc[m][0]);acc[m][1]=_mm256_fmadd_ps(x,b1,acc[m][1]);acc[m][2]=_mm256_fmadd_ps(x,b2,acc[m][2]);acc[m][3]=_mm256_fmadd_ps(x,b3,acc[m][3]);}
  }
  for(int m=0;m<MR;++m) for(int v=0;v<4;++v) _mm256_storeu_ps(c+m*ldc+v*8,acc[m][v]);
}
int main(int argc,char**argv){
  long K=atol(argv[1]), B=atol(argv[2]); int tiles=atoi(argv[3]); int pf=atoi(argv[4]); int mode=atoi(argv[5]);
  std::vector<float> A(B*K), P(tiles*K*32), C(B*tiles*32);
  for(auto&v:A) v=0.001f; for(auto&v:P) v=0.001f;
  // mode 0: tile outer, row blocks inner (as fused); mode 1: row groups of G rows outer, tiles, blocks
  long G = mode==1 ? atol(argv[6]) : B;
  double best=1e9;
  for(int rep=0;rep<5;++rep){
    auto t0=std::chrono::steady_clock::now();
    int steps=20;
    for(int s=0;s<steps;++s){
      for(long g0=0; g0<B; g0+=G){ long g1=std::min(B,g0+G);
      for(int u=0;u<tiles;++u){ const float* p=P.data()+u*K*32;
        long r=g0;
        for(;r+3<=g1;r+=3) kern<3>(A.data()+r*K,K,p,K,C.data()+r*tiles*32+u*32,tiles*32,pf);
        for(;r<g1;++r) kern<1>(A.data()+r*K,K,p,K,C.data()+r*tiles*32+u*32,tiles*32,pf);
      }}
    }
    double sec=std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count()/steps;
    best=std::min(best,sec);
  }
  printf("K=%ld B=%ld tiles=%d pf=%d mode=%d G=%ld: %.1f GFLOP/s (%.0f us/step)\n",K,B,tiles,pf,mode,G,2.0*B*K*tiles*32/best/1e9,best*1e6);
}
