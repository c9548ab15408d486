#include <immintrin.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <chrono>
#include <algorithm>
template<int MR, bool LOAD>
static inline void kern(const float* a, long lda, const float* p, long K, float* c, long ldc) {
  __m256 acc[MR][4];
  for(int m=0;m<MR;++m) for(int v=0;v<4;++v) acc[m][v]= LOAD ? _mm256_loadu_ps(c+m*ldc+v*8) : _mm256_setzero_ps();
  for(long k=0;k<K;++k){
    const float* w=p+k*32;
    __m256 b0=_mm256_loadu_ps(w),b1=_mm256_loadu_ps(w+8),b2=_mm256_loadu_ps(w+16),b3=_mm256_loadu_ps(w+24);
    for(int m=0;m<MR;++m){ __m256 x=_mm256_broadcast_ss(a+m*lda+k);
      acc[m][0]=_mm256_fmadd_ps(x,b0,acc[m][0]);acc[m][1]=_mm256_fmadd_ps(x,b1,acc[m][1]);acc[m][2]=_mm256_fmadd_ps(x,b2,acc[m][2]);acc[m][3]=_mm256_fmadd_ps(x,b3,acc[m][3]);}
  }
  for(int m=0;m<MR;++m) for(int v=0;v<4;++v) _mm256_storeu_ps(c+m*ldc+v*8,acc[m][v]);
}
int main(int argc,char**argv){
  long K=atol(argv[1]), B=atol(argv[2]); int tiles=atoi(argv[3]); long kc=atol(argv[4]);
  std::vector<float> A(B*K), P(tiles*K*32), C(B*tiles*32);
  for(auto&v:A) v=0.001f; for(auto&v:P) v=0.001f;
  std::vector<float> buf(B*32);
  double best=1e9;
  for(int rep=0;rep<7;++rep){
    auto t0=std::chrono::steady_clock::now();
    int steps=20;
    for(int s=0;s<steps;++s){
      for(int u=0;u<tiles;++u){ const float* p=P.data()+u*K*32;
        if(kc==0){
          long r=0;
          for(;r+3<=B;r+=3) kern<3,false>(A.data()+r*K,K,p,K,C.data()+r*tiles*32+u*32,tiles*32);
          for(;r<B;++r) kern<1,false>(A.data()+r*K,K,p,K,C.data()+r*tiles*32+u*32,tiles*32);
        } else {
          for(long k0=0;k0<K;k0+=kc){ long kk=std::min(kc,K-k0);
            long r=0;
            if(k0==0){
            for(;r+3<=B;r+=3) kern<3,false>(A.data()+r*K+k0,K,p+k0*32,kk,buf.data()+r*32,32);
            for(;r<B;++r) kern<1,false>(A.data()+r*K+k0,K,p+k0*32,kk,buf.data()+r*32,32);
            } else {
            for(;r+3<=B;r+=3) kern<3,true>(A.data()+r*K+k0,K,p+k0*32,kk,buf.data()+r*32,32);
            for(;r<B;++r) kern<1,true>(A.data()+r*K+k0,K,p+k0*32,kk,buf.data()+r*32,32);
            }
          }
          for(long r=0;r<B;++r) for(int v=0;v<32;++v) C[r*tiles*32+u*32+v]=buf[r*32+v];
        }
      }
    }
    double sec=std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count()/steps;
    best=std::min(best,sec);
  }
  printf("K=%ld B=%ld tiles=%d kc=%ld: %.1f GFLOP/s (%.0f us/step)\n",K,B,tiles,kc,2.0*B*K*tiles*32/best/1e9,best*1e6);
}
