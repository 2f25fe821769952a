/* placeholder until the simulator lands */
typedef int nk_sim_placeholder;
