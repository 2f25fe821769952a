/* placeholder until the real runtime lands */
typedef int nk_rt_real_placeholder;
