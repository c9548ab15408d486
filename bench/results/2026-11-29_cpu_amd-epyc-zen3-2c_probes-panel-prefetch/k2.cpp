#include <immintrin.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <chrono>
#include <algorithm>
// strided A (lda), panel NV*8 wide
template<int MR,int NV>
__attribute__((noinline)) void ks(const float* a, long lda, const float* p, long K, float* c) {
  __m256 acc[MR][NV];
  for(int m=0;m<MR;++m) for(int v=0;v<NV;++v) acc[m][v]=_mm256_setzero_ps();
  for(long k=0;k<K;++k){
    const float* w=p+k*NV*8; __m256 b[NV];
    for(int v=0;v<NV;++v) b[v]=_mm256_loadu_ps(w+v*8);
    for(int m=0;m<MR;++m){ __m256 x=_mm256_broadcast_ss(a+m*lda+k);
      for(int v=0;v<NV;++v) acc[m][v]=_mm256_fmadd_ps(x,b[v],acc[m][v]);}
  }
  for(int m=0;m<MR;++m) for(int v=0;v<NV;++v) _mm256_storeu_ps(c+(m*NV+v)*8,acc[m][v]);
}
// packed A: a[k*MR+m]
template<int MR,int NV>
__attribute__((noinline)) void kp(const float* a, const float* p, long K, float* c) {
  __m256 acc[MR][NV];
  for(int m=0;m<MR;++m) for(int v=0;v<NV;++v) acc[m][v]=_mm256_setzero_ps();
  for(long k=0;k<K;++k){
    const float* w=p+k*NV*8; __m256 b[NV];
    for(int v=0;v<NV;++v) b[v]=_mm256_loadu_ps(w+v*8);
    for(int m=0;m<MR;++m){ __m256 x=_mm256_broadcast_ss(a+k*MR+m);
      for(int v=0;v<NV;++v) acc[m][v]=_mm256_fmadd_ps(x,b[v],acc[m][v]);}
  }
  for(int m=0;m<MR;++m) for(int v=0;v<NV;++v) _mm256_storeu_ps(c+(m*NV+v)*8,acc[m][v]);
}
template<class F> void time(const char* name, long flops, F f){
  double best=1e9;
  for(int r=0;r<7;++r){ auto t0=std::chrono::steady_clock::now(); for(int i=0;i<20000;++i) f(); 
    best=std::min(best,std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count()); }
  printf("%-12s %.1f GFLOP/s\n",name,2.0*flops*20000/best/1e9);
}
int main(){
  const long K=256; std::vector<float> A(8*K,0.001f), P(K*32,0.001f); float C[256];
  time("s3x4",3*K*32,[&]{ks<3,4>(A.data(),K,P.data(),K,C);});
  time("s4x3",4*K*24,[&]{ks<4,3>(A.data(),K,P.data(),K,C);});
  time("s6x2",6*K*16,[&]{ks<6,2>(A.data(),K,P.data(),K,C);});
  time("p3x4",3*K*32,[&]{kp<3,4>(A.data(),P.data(),K,C);});
  time("p4x3",4*K*24,[&]{kp<4,3>(A.data(),P.data(),K,C);});
  time("p6x2",6*K*16,[&]{kp<6,2>(A.data(),P.data(),K,C);});
  time("p2x6",2*K*48,[&]{kp<2,6>(A.data(),P.data(),K,C);});
}
