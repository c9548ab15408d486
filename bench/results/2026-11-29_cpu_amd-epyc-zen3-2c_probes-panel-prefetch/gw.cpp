// C (M x N) = A^T B, A: K x M row-major (lda), B: K x N row-major (ldb). BLIS-style, AVX2 6x16.
#include <immintrin.h>
#include <omp.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <chrono>
#include <algorithm>
constexpr int MR=6, NR=16;
static inline void kernel(int kc, const float* a, const float* b, float* c, int ldc, bool acc, int mr, int nr) {
  __m256 c00=_mm256_setzero_ps(),c01=c00,c10=c00,c11=c00,c20=c00,c21=c00,c30=c00,c31=c00,c40=c00,c41=c00,c50=c00,c51=c00;
  for (int k=0;k<kc;++k){
    __m256 b0=_mm256_load_ps(b), b1=_mm256_load_ps(b+8);
    __m256 x;
    x=_mm256_broadcast_ss(a+0); c00=_mm256_fmadd_ps(x,b0,c00); c01=_mm256_fmadd_ps(x,b1,c01);
    x=_mm256_broadcast_ss(a+1); c10=_mm256_fmadd_ps(x,b0,c10); c11=_mm256_fmadd_ps(x,b1,c11);
    x=_mm256_broadcast_ss(a+2); c20=_mm256_fmadd_ps(x,b0,c20); c21=_mm256_fmadd_ps(x,b1,c21);
    x=_mm256_broadcast_ss(a+3); c30=_mm256_fmadd_ps(x,b0,c30); c31=_mm256_fmadd_ps(x,b1,c31);
    x=_mm256_broadcast_ss(a+4); c40=_mm256_fmadd_ps(x,b0,c40); c41=_mm256_fmadd_ps(x,b1,c41);
    x=_mm256_broadcast_ss(a+5); c50=_mm256_fmadd_ps(x,b0,c50); c51=_mm256_fmadd_ps(x,b1,c51);
    a+=MR; b+=NR;
  }
  alignas(32) float t[MR][NR];
  _mm256_store_ps(t[0],c00);_mm256_store_ps(t[0]+8,c01);_mm256_store_ps(t[1],c10);_mm256_store_ps(t[1]+8,c11);
  _mm256_store_ps(t[2],c20);_mm256_store_ps(t[2]+8,c21);_mm256_store_ps(t[3],c30);_mm256_store_ps(t[3]+8,c31);
  _mm256_store_ps(t[4],c40);_mm256_store_ps(t[4]+8,c41);_mm256_store_ps(t[5],c50);_mm256_store_ps(t[5]+8,c51);
  if (mr==MR && nr==NR) {
    for(int i=0;i<MR;++i){ float* ci=c+i*ldc;
      __m256 v0=_mm256_load_ps(t[i]), v1=_mm256_load_ps(t[i]+8);
      if(acc){v0=_mm256_add_ps(v0,_mm256_loadu_ps(ci)); v1=_mm256_add_ps(v1,_mm256_loadu_ps(ci+8));}
      _mm256_storeu_ps(ci,v0); _mm256_storeu_ps(ci+8,v1);}
  } else {
    for(int i=0;i<mr;++i) for(int j=0;j<nr;++j) c[i*ldc+j]= acc? c[i*ldc+j]+t[i][j] : t[i][j];
  }
}
void gemm_tn(int M,int N,int K,const float*A,int lda,const float*B,int ldb,float*C,int ldc, int KC, int MC){
  const int npan=(N+NR-1)/NR;
  std::vector<float> Bp; 
  #pragma omp parallel
  {
    int nt=omp_get_num_threads(), id=omp_get_thread_num();
    // split M in MR-multiples
    int mblocks=(M+MR-1)/MR; int per=(mblocks+nt-1)/nt; int m0=std::min(M,id*per*MR), m1=std::min(M,(id+1)*per*MR);
    float* Ap=(float*)aligned_alloc(64, sizeof(float)*((MC+MR)*KC));
    static float* Bs=nullptr;
    #pragma omp single
    { Bs=(float*)aligned_alloc(64,sizeof(float)*(size_t)npan*NR*KC); }
    for(int pc=0;pc<K;pc+=KC){
      int kc=std::min(KC,K-pc);
      // pack B: panels of NR columns, kc x NR each (shared, split among threads)
      #pragma omp for schedule(static)
      for(int p=0;p<npan;++p){ float* d=Bs+(size_t)p*NR*kc; int j0=p*NR, nr=std::min(NR,N-j0);
        for(int k=0;k<kc;++k){ const float* s=B+(size_t)(pc+k)*ldb+j0; if(nr==NR){ _mm256_store_ps(d+k*NR,_mm256_loadu_ps(s)); _mm256_store_ps(d+k*NR+8,_mm256_loadu_ps(s+8)); } else { for(int j=0;j<NR;++j) d[k*NR+j]= j<nr? s[j]:0.f; } } }
      for(int ic=m0;ic<m1;ic+=MC){
        int mc=std::min(MC,m1-ic);
        int mp=(mc+MR-1)/MR;
        for(int q=0;q<mp;++q){ float* d=Ap+q*MR*kc; int i0=ic+q*MR, mr=std::min(MR,ic+mc-i0);
          for(int k=0;k<kc;++k){ const float* s=A+(size_t)(pc+k)*lda+i0; for(int i=0;i<MR;++i) d[k*MR+i]= i<mr? s[i]:0.f; } }
        for(int p=0;p<npan;++p){ int j0=p*NR, nr=std::min(NR,N-j0);
          for(int q=0;q<mp;++q){ int i0=ic+q*MR, mr=std::min(MR,ic+mc-i0);
            kernel(kc, Ap+q*MR*kc, Bs+(size_t)p*NR*kc, C+(size_t)i0*ldc+j0, ldc, pc>0, mr, nr); } }
      }
      #pragma omp barrier
    }
    free(Ap);
    #pragma omp barrier
    #pragma omp single
    { free(Bs); }
  }
}
int main(int argc,char**argv){
  int KC=atoi(argv[1]), MC=atoi(argv[2]);
  int shapes[][3]={{1600,2048,512},{3200,2048,512},{12800,1024,256},{2048,2048,2048},{1600,4096,1024},{400,2048,512},{1600,1024,256}};
  for(auto&s:shapes){ int K=s[0],M=s[1],N=s[2];
    std::vector<float> A((size_t)K*M),B((size_t)K*N),C((size_t)M*N),R((size_t)M*N);
    for(auto&v:A) v=rand()/(float)RAND_MAX-0.5f; for(auto&v:B) v=rand()/(float)RAND_MAX-0.5f;
    std::vector<double> ts;
    for(int r=0;r<12;++r){ auto t0=std::chrono::steady_clock::now(); gemm_tn(M,N,K,A.data(),M,B.data(),N,C.data(),N,KC,MC);
      ts.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count()); }
    std::sort(ts.begin(),ts.end());
    // check a few entries
    double err=0; for(int t=0;t<50;++t){int i=rand()%M,j=rand()%N; double s=0; for(int k=0;k<K;++k) s+=(double)A[(size_t)k*M+i]*B[(size_t)k*N+j]; err=std::max(err,std::abs(s-C[(size_t)i*N+j]));}
    printf("K=%d M=%d N=%d: %.2f ms %.0f GFLOP/s err %.1e\n",K,M,N,ts[6]*1e3,2.0*K*M*N/ts[6]/1e9,err);
  }
}
