// Per-pass time of an FMA sweep over a per-thread buffer of S bytes, repeated (one "step" a pass):
// every line loaded plainly, or the first R bytes plainly and the rest with prefetchnta ahead.
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <thread>
#include <atomic>
#include <algorithm>
static float sweep(const float* p, size_t n, size_t resident, int dist) {
  __m512 a0=_mm512_setzero_ps(),a1=a0,a2=a0,a3=a0,x=_mm512_set1_ps(1.0001f);
  for (size_t i=0;i<n;i+=64) {
    if (i>=resident) { _mm_prefetch((const char*)(p+i+dist*16),_MM_HINT_NTA); _mm_prefetch((const char*)(p+i+dist*16+16),_MM_HINT_NTA);_mm_prefetch((const char*)(p+i+dist*16+32),_MM_HINT_NTA);_mm_prefetch((const char*)(p+i+dist*16+48),_MM_HINT_NTA);}
    a0=_mm512_fmadd_ps(_mm512_loadu_ps(p+i),x,a0);
    a1=_mm512_fmadd_ps(_mm512_loadu_ps(p+i+16),x,a1);
    a2=_mm512_fmadd_ps(_mm512_loadu_ps(p+i+32),x,a2);
    a3=_mm512_fmadd_ps(_mm512_loadu_ps(p+i+48),x,a3);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0,a1),_mm512_add_ps(a2,a3)));
}
int main(int argc,char**argv){
  size_t S=atol(argv[1])<<10; size_t R=atol(argv[2])<<10; int dist=atoi(argv[3]); int nth=atoi(argv[4]); int passes=2000;
  std::vector<double> per(nth);
  std::atomic<int> ready{0};
  std::vector<std::thread> th;
  for(int t=0;t<nth;++t) th.emplace_back([&,t]{
    std::vector<float> buf(S/4+4096,1.0f);
    size_t n=S/4; float s=0;
    for(int i=0;i<50;++i){ asm volatile("" ::: "memory");} for(int i=0;i<50;++i) s+=sweep(buf.data(),n,R/4,dist);
    ready++; while(ready<nth){}
    std::vector<double> ts;
    for(int r=0;r<5;++r){
      auto t0=std::chrono::steady_clock::now();
      for(int i=0;i<passes/5;++i){ asm volatile("" ::: "memory"); s+=sweep(buf.data(),n,R/4,dist);}
      ts.push_back(std::chrono::duration<double,std::micro>(std::chrono::steady_clock::now()-t0).count()/(passes/5));
    }
    std::sort(ts.begin(),ts.end()); per[t]=ts[2];
    if(s==0.123f) printf("x");
  });
  for(auto&t:th)t.join();
  for(int t=0;t<nth;++t) printf("S=%zuKB resident=%zuKB dist=%d thread %d: %.2f us/pass %.1f GB/s\n",S>>10,R>>10,dist,t,per[t],S/per[t]/1e3);
}
