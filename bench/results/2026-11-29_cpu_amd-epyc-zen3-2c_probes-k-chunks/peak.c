#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#include <omp.h>
int main(){
  double best=0;
  for(int rep=0;rep<5;rep++){
  double t0=omp_get_wtime(); long iters=200000000/4;
  float out[2]={0,0};
  #pragma omp parallel num_threads(2)
  {
    __m256 a[12]; __m256 b=_mm256_set1_ps(1.0000001f), c=_mm256_set1_ps(1e-7f);
    for(int i=0;i<12;i++) a[i]=_mm256_set1_ps(i);
    for(long it=0;it<iters;it++){
      #pragma GCC unroll 12
      for(int i=0;i<12;i++) a[i]=_mm256_fmadd_ps(a[i],b,c);
    }
    __m256 s=a[0]; for(int i=1;i<12;i++) s=_mm256_add_ps(s,a[i]);
    out[omp_get_thread_num()]=s[0];
  }
  double t=omp_get_wtime()-t0; double gf=2.0*8*12*iters*2/t/1e9; if(gf>best)best=gf;
  printf("%.1f GFLOP/s (%f)\n",gf,out[0]+out[1]);
  }
  printf("best %.1f\n",best);
}
