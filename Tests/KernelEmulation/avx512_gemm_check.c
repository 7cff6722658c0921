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
  ak_set_isa(AK_ISA_AVX512);
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
  // Convolutions through the implicit-im2col packing (32-column panels), against the chain
  // computed straight from the image.
  long cbad=0, ctotal=0;
  for(int trial=0;trial<30;trial++){
    int cin=1+rand()%5, h=1+rand()%40, w=1+rand()%70, cout=1+rand()%20, kk=(rand()%2)?3:1, s=1+rand()%2;
    int pt=rand()%2, pl=rand()%2, pb=rand()%2, pr=rand()%2;
    int ho=(h+pt+pb-kk)/s+1, wo=(w+pl+pr-kk)/s+1; if(ho<=0||wo<=0) continue;
    int K=cin*kk*kk, N=ho*wo;
    float *x=malloc(4L*cin*h*w),*wt=malloc(4L*cout*K),*c=malloc(4L*cout*N);
    for(long i=0;i<(long)cin*h*w;i++)x[i]=rand()/(float)RAND_MAX-0.5f; for(long i=0;i<(long)cout*K;i++)wt[i]=rand()/(float)RAND_MAX-0.5f;
    ak_conv_geometry g={x,cin,h,w,kk,kk,s,pt,pl,ho,wo};
    int nr=ak_nr(), panels=(N+nr-1)/nr;
    float *bp=aligned_alloc(64,4L*panels*nr*AK_KC+64), *ap=aligned_alloc(64,4L*(cout+6)*AK_KC+64);
    for(int pc=0;pc<K;pc+=AK_KC){int kc=K-pc<AK_KC?K-pc:AK_KC;
      ak_pack_b_conv(&g,pc,kc,0,N,0,panels,bp); ak_pack_a(wt,K,0,0,cout,pc,kc,ap);
      ak_macro_kernel(cout,N,kc,ap,bp,c,N,pc>0,pc+kc>=K,1.0f,NULL,NULL);}
    for(int o=0;o<cout;o++)for(int n=0;n<N;n++){int oy=n/wo,ox=n%wo; float acc=0;
      for(int k=0;k<K;k++){int ci=k/(kk*kk),ki=(k/kk)%kk,kj=k%kk; int iy=oy*s-pt+ki, ix=ox*s-pl+kj;
        float bv=(iy>=0&&iy<h&&ix>=0&&ix<w)?x[(long)ci*h*w+iy*w+ix]:0.0f; acc=fmaf(wt[(long)o*K+k],bv,acc);}
      ctotal++; if(memcmp(&acc,&c[(long)o*N+n],4))cbad++;}
    free(x);free(wt);free(c);free(bp);free(ap);
  }
  printf("conv mismatches %ld of %ld\n",cbad,ctotal);
  return bad!=0 || cbad!=0;
}
