/* placeholder: replaced by the scenario runner */
int main(void) { return 0; }
