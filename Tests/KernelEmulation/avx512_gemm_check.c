// Checks the AVX-512 GEMM path bit for bit against a scalar fmaf chain on a machine WITHOUT
// AVX-512: scripts/avx512-emulation-check.sh compiles the kernels with the AVX-512 micro-kernel's
// intrinsics mapped onto SIMDe's portable AVX2+FMA implementation (exact FMAs) and the dispatch
// forced to the AVX-512 family (6×32 tiles, 32-column packing). Random shapes, transposes,
// accumulation, alpha and both bias kinds.
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include "AtelierKernelsC.h"
int main(){
  srand(2); long bad=0, total=0;
  printf("isa %s nr %d\n", ak_isa_name(ak_isa_current()), ak_nr());
  for(int trial=0;trial<60;trial++){
    int m=1+rand()%40,n=1+rand()%100,k=rand()%900; int ta=rand()%2,tb=rand()%2,acc=rand()%2; float alpha=(rand()%2)?1.0f:0.5f; if(acc)alpha=1;
    int kk=k?k:1;
    float *a=malloc(4L*m*kk),*b=malloc(4L*kk*n),*c=malloc(4L*m*n),*r=malloc(4L*m*n),*br=malloc(4L*m),*bc=malloc(4L*n);
    for(long i=0;i<(long)m*kk;i++)a[i]=rand()/(float)RAND_MAX-0.5f; for(long i=0;i<(long)kk*n;i++)b[i]=rand()/(float)RAND_MAX-0.5f;
    for(long i=0;i<(long)m*n;i++)c[i]=r[i]=rand()/(float)RAND_MAX; for(int i=0;i<m;i++)br[i]=rand()/(float)RAND_MAX; for(int i=0;i<n;i++)bc[i]=rand()/(float)RAND_MAX;
    int ub=rand()%2;
    ak_sgemm_serial(m,n,k,alpha,a,ta?m:kk,ta,b,tb?kk:n,tb,c,n,acc,ub?br:NULL,ub?NULL:bc);
    for(int i=0;i<m;i++)for(int j=0;j<n;j++){float s=acc?r[i*n+j]:0; for(int p=0;p<k;p++){float av=ta?a[p*m+i]:a[i*kk+p]; float bv=tb?b[j*kk+p]:b[p*n+j]; s=fmaf(av,bv,s);} if(alpha!=1)s=s*alpha; if(ub)s=s+br[i]; else s=s+bc[j]; total++; if(memcmp(&s,&c[i*n+j],4))bad++;}
    free(a);free(b);free(c);free(r);free(br);free(bc);
  }
  printf("gemm mismatches %ld of %ld\n",bad,total);
  return bad!=0;
}
